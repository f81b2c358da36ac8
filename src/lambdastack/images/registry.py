"""A client of the OCI distribution API (v2): authentication, manifests and blobs.

Authentication follows the registry's `WWW-Authenticate` challenge: anonymous first, then
HTTP Basic, or the bearer token flow (a token from the challenge's realm for the scope
`repository:<name>:pull`, asked for with Basic credentials when there are some). Tokens are
kept per repository until a request is refused again.

A tag may name an image index (or a Docker manifest list): the manifest for linux and the
function's architecture is chosen from it. Every manifest and blob is checked against the
digest that named it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from lambdastack.images import errors
from lambdastack.images.reference import DIGEST, ImageReference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
)
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
CONFIG_MAX_BYTES = 8 * 1024 * 1024
ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}

Credentials = Callable[[str], "tuple[str, str] | None"]

logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request in the server's log


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class ResolvedImage:
    """An image reference pinned to content: the platform manifest, its config and layers."""

    reference: ImageReference
    digest: str  # what the reference resolved to (an index or a manifest): ResolvedImageUri's digest
    manifest_digest: str  # the platform's own manifest: identifies the root filesystem
    manifest: bytes
    config_digest: str
    config: bytes
    layers: tuple[Layer, ...]

    @property
    def settings(self) -> dict[str, Any]:
        """The image's `config` member: Entrypoint, Cmd, Env, WorkingDir, User, ..."""
        document = json.loads(self.config)
        inner = document.get("config") if isinstance(document, dict) else None
        return inner if isinstance(inner, dict) else {}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class _Auth:
    header: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class RegistryClient:
    def __init__(self, credentials: Credentials, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.credentials = credentials
        self._http = httpx.Client(timeout=timeout, follow_redirects=True, transport=transport,
                                  headers={"User-Agent": "lambdastack"})
        self._auth: dict[tuple[str, str], _Auth] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ resolution

    def resolve(self, ref: ImageReference, architecture: str = "x86_64") -> ResolvedImage:
        """Pin `ref` to the linux/<architecture> manifest, with its config and layer list."""
        body, media_type, digest = self._manifest(ref, ref.reference)
        resolved_digest = digest
        document = _json(body, ref, "manifest")
        media_type = document.get("mediaType") or media_type
        if media_type in INDEXES or (not media_type and "manifests" in document):
            choice = _choose_platform(document, ARCHITECTURES.get(architecture, architecture), ref)
            body, media_type, digest = self._manifest(ref, choice)
            document = _json(body, ref, "manifest")
            media_type = document.get("mediaType") or media_type
        if media_type not in MANIFESTS and not (not media_type and "layers" in document):
            raise errors.invalid(str(ref), f"unsupported manifest type {media_type or 'unknown'}")
        config_ref = document.get("config") or {}
        config_digest = str(config_ref.get("digest") or "")
        if not DIGEST.match(config_digest):
            raise errors.invalid(str(ref), "the manifest names no config blob")
        config = self._small_blob(ref, config_digest, CONFIG_MAX_BYTES)
        layers = []
        for entry in document.get("layers") or []:
            layer = Layer(str(entry.get("digest") or ""), int(entry.get("size") or 0),
                          str(entry.get("mediaType") or ""))
            if not DIGEST.match(layer.digest):
                raise errors.invalid(str(ref), f"unsupported layer digest {layer.digest!r}")
            if layer.media_type and layer.media_type not in LAYER_TYPES:
                raise errors.invalid(str(ref), f"unsupported layer type {layer.media_type}")
            layers.append(layer)
        settings = _json(config, ref, "config")
        if settings.get("os") not in (None, "linux"):
            raise errors.invalid(str(ref), f"the image is for {settings.get('os')}, not linux")
        return ResolvedImage(ref, resolved_digest, digest, body, config_digest, config, tuple(layers))

    def exists(self, ref: ImageReference, timeout: float = 2.0) -> bool:
        """False only if the registry answers that `ref` names no manifest (never pushed, or deleted)."""
        try:
            self._manifest(ref, ref.reference, timeout)
        except errors.ImageError as e:
            return e.code != errors.IMAGE_DELETED
        return True

    def _manifest(self, ref: ImageReference, reference: str, timeout: float | None = None) -> tuple[bytes, str, str]:
        accept = ", ".join((*INDEXES, *MANIFESTS))
        with self._get(ref, f"/manifests/{reference}", {"Accept": accept}, timeout) as response:
            body = _read_limited(response, MANIFEST_MAX_BYTES, ref, "manifest")
        digest = sha256_digest(body)
        if DIGEST.match(reference) and digest != reference:
            raise errors.invalid(str(ref), f"manifest {reference} does not match its digest ({digest})")
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        return body, media_type, digest

    def _small_blob(self, ref: ImageReference, digest: str, limit: int) -> bytes:
        with self._get(ref, f"/blobs/{digest}", {}) as response:
            body = _read_limited(response, limit, ref, "config")
        if sha256_digest(body) != digest:
            raise errors.invalid(str(ref), f"blob {digest} does not match its digest")
        return body

    def blob_chunks(self, ref: ImageReference, digest: str) -> Iterator[bytes]:
        """The bytes of a blob as they arrive (the caller verifies the digest)."""
        with self._get(ref, f"/blobs/{digest}", {}) as response:
            yield from response.iter_bytes(1 << 20)

    # ------------------------------------------------------------------ HTTP with auth

    def _state(self, ref: ImageReference) -> _Auth:
        with self._lock:
            return self._auth.setdefault((ref.host, ref.repository), _Auth())

    def _get(self, ref: ImageReference, path: str, headers: dict[str, str], timeout: float | None = None) -> _Response:
        url = f"{ref.base_url}/v2/{ref.repository}{path}"
        state = self._state(ref)
        for attempt in range(2):
            sent = dict(headers)
            if state.header:
                sent["Authorization"] = state.header
            try:
                request = self._http.build_request("GET", url, headers=sent,
                                                   timeout=timeout if timeout is not None else self._http.timeout)
                response = self._http.send(request, stream=True)
            except httpx.HTTPError as e:
                raise errors.unreachable(str(ref), f"{type(e).__name__}: {e}")
            if response.status_code == 401 and attempt == 0:
                challenge = response.headers.get("www-authenticate", "")
                response.close()
                with state.lock:
                    state.header = self._authorize(ref, challenge)
                continue
            return _Response(response, ref, path)
        raise AssertionError("unreachable")

    def _authorize(self, ref: ImageReference, challenge: str) -> str:
        scheme = challenge.split(" ", 1)[0].lower()
        creds = self.credentials(ref.registry)
        if scheme == "basic":
            if creds is None:
                raise errors.access_denied(str(ref), "the registry asks for credentials and none are configured")
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        if scheme != "bearer":
            raise errors.access_denied(str(ref), f"unsupported authentication scheme {scheme or '(none)'}")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise errors.access_denied(str(ref), "the registry's token challenge names no realm")
        query = {"scope": params.get("scope") or f"repository:{ref.repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        auth = httpx.BasicAuth(*creds) if creds else None
        try:
            response = self._http.get(realm, params=query, auth=auth)
        except httpx.HTTPError as e:
            raise errors.unreachable(str(ref), f"token service {realm}: {type(e).__name__}: {e}")
        if response.status_code in (401, 403):
            raise errors.access_denied(str(ref), f"the token service refused the credentials ({response.status_code})")
        if response.status_code != 200:
            raise errors.unreachable(str(ref), f"token service {realm} answered {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise errors.unreachable(str(ref), f"token service {realm} answered no JSON")
        token = document.get("token") or document.get("access_token")
        if not token:
            raise errors.access_denied(str(ref), "the token service handed out no token")
        return f"Bearer {token}"


class _Response:
    """A streamed response whose status was checked, as a context manager."""

    def __init__(self, response: httpx.Response, ref: ImageReference, path: str) -> None:
        self.response = response
        self.headers = response.headers
        status = response.status_code
        if status == 200:
            return
        detail = _registry_error(response)
        response.close()
        what = path.rsplit("/", 1)[-1]
        if status == 404:
            raise errors.not_found(str(ref), f"{what}: {detail}")
        if status in (401, 403):
            raise errors.access_denied(str(ref), detail)
        if status >= 500 or status == 429:
            raise errors.unreachable(str(ref), f"the registry answered {status}: {detail}")
        raise errors.invalid(str(ref), f"the registry answered {status} for {what}: {detail}")

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.response.close()

    def iter_bytes(self, size: int) -> Iterator[bytes]:
        try:
            yield from self.response.iter_bytes(size)
        except httpx.HTTPError as e:
            raise errors.ImageError(errors.INTERNAL_ERROR, f"the download broke off: {type(e).__name__}: {e}")


def _registry_error(response: httpx.Response) -> str:
    """`CODE: message` from the distribution API's error body, else the status line."""
    try:
        body = response.read()
        document = json.loads(body) if len(body) < 65536 else {}
        first = (document.get("errors") or [{}])[0]
        if first.get("code"):
            return f"{first['code']}: {first.get('message', '')}".strip()
    except (ValueError, AttributeError, httpx.HTTPError):
        pass
    return f"HTTP {response.status_code}"


def _read_limited(response: _Response, limit: int, ref: ImageReference, what: str) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes(65536):
        data += chunk
        if len(data) > limit:
            raise errors.invalid(str(ref), f"the {what} is larger than {limit} bytes")
    return bytes(data)


def _json(body: bytes, ref: ImageReference, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise errors.invalid(str(ref), f"the {what} is not JSON")
    if not isinstance(document, dict):
        raise errors.invalid(str(ref), f"the {what} is not a JSON object")
    if document.get("schemaVersion") not in (None, 2):
        raise errors.invalid(str(ref), f"unsupported {what} schema version {document.get('schemaVersion')}")
    return document


def _choose_platform(index: dict[str, Any], architecture: str, ref: ImageReference) -> str:
    offered = []
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        offered.append(f"{platform.get('os')}/{platform.get('architecture')}")
        if platform.get("os") == "linux" and platform.get("architecture") == architecture:
            digest = str(entry.get("digest") or "")
            if DIGEST.match(digest):
                return digest
    raise errors.invalid(
        str(ref), f"the image index has no manifest for linux/{architecture} (it has {', '.join(offered) or 'none'})"
    )
