"""Container images for tests, without a container daemon: a real registry and real images.

`Registry` runs Debian's `docker-registry` (the distribution project's registry) on a free
loopback port with its storage in a temporary directory, optionally behind htpasswd basic
auth. `Image` writes an OCI image layout (layers as tar.gz blobs, a config, a manifest, an
index) and `Registry.push` copies it into the registry with `skopeo copy`, as a CI pipeline
would push an image built elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from helpers import free_port

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def tools_missing() -> str | None:
    for tool in (REGISTRY_BINARY, "/usr/bin/skopeo"):
        if not os.path.exists(tool):
            return f"{tool} is not installed (scripts/test installs docker-registry and skopeo)"
    return None


class Registry:
    """A distribution registry on 127.0.0.1:<free port>."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = free_port()
        self.users = users or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        auth = ""
        if self.users:
            import bcrypt

            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text("".join(
                f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                for user, password in self.users.items()
            ))
            auth = f"auth:\n  htpasswd:\n    realm: lambdastack-tests\n    path: {htpasswd}\n"
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + auth
        )
        log = open(self.workdir / "registry.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "registry.log").read_text())
            try:
                if requests.get(f"http://{self.host}/v2/", timeout=1).status_code in (200, 401):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("the registry did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def push(self, layout: Path, repository: str, tag: str, *, user: str | None = None, all_platforms: bool = False,
             layout_tag: str = "latest") -> str:
        """Copy an OCI layout into the registry; returns the image URI with its tag."""
        command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
        if user is not None:
            command.append(f"--dest-creds={user}:{self.users[user]}")
        if all_platforms:
            command.append("--all")
        command += [f"oci:{layout}:{layout_tag}", f"docker://{self.host}/{repository}:{tag}"]
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        return f"{self.host}/{repository}:{tag}"

    def delete_tag(self, repository: str, tag: str, auth: tuple[str, str] | None = None) -> None:
        accept = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
        head = requests.head(f"http://{self.host}/v2/{repository}/manifests/{tag}", headers=accept, auth=auth,
                             timeout=10)
        digest = head.headers["Docker-Content-Digest"]
        r = requests.delete(f"http://{self.host}/v2/{repository}/manifests/{digest}", auth=auth, timeout=10)
        assert r.status_code == 202, r.text


class HoldingProxy:
    """An HTTP proxy in front of a registry: the first request for a manifest goes through, later
    ones wait until `release()` (to change the registry between a function's creation and its pull)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.released = threading.Event()
        self._manifests = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy._forward(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> HoldingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        if "/manifests/" in handler.path:
            with self._lock:
                self._manifests += 1
                first = self._manifests == 1
            if not first:
                self.released.wait(30)
        sent = {k: v for k, v in handler.headers.items() if k.lower() in ("accept", "authorization")}
        r = requests.get(f"http://{self.upstream}{handler.path}", headers=sent, timeout=30)
        handler.send_response(r.status_code)
        for name in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
            if name in r.headers:
                handler.send_header(name, r.headers[name])
        handler.send_header("Content-Length", str(len(r.content)))
        handler.end_headers()
        handler.wfile.write(r.content)


# ------------------------------------------------------------------------------ layers


@dataclass
class Entry:
    """One member of a layer's tar archive."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    kind: bytes = tarfile.REGTYPE  # REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE ...
    link: str = ""
    uid: int = 0
    gid: int = 0


def file(name: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(name, data.encode() if isinstance(data, str) else data, mode)


def directory(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, mode=mode, kind=tarfile.DIRTYPE)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, mode=0o777, kind=tarfile.SYMTYPE, link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, kind=tarfile.LNKTYPE, link=target)


def layer(entries: list[Entry]) -> bytes:
    """An uncompressed tar archive of `entries`, in order, exactly as given (no sanitizing)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = 1_700_000_000
            info.linkname = e.link
            if e.kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            info.size = len(e.data) if e.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def tree_layer(path: Path, sources: dict[str, Path], exclude: tuple[str, ...] = ()) -> None:
    """A tar.gz layer at `path` from host files and directories (archive name -> host path)."""
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if any(part in exclude for part in info.name.split("/")):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with gzip.open(path, "wb", compresslevel=1) as raw, tarfile.open(fileobj=raw, mode="w") as tar:
        for name, source in sources.items():
            tar.add(str(source), arcname=name, filter=keep)


# ------------------------------------------------------------------------------ images


@dataclass
class Image:
    """An OCI image layout being written: add layers, then `write`."""

    layout: Path
    architecture: str = "amd64"
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    layers: list[tuple[str, int, str]] = field(default_factory=list)  # (digest, size, diff id)

    def __post_init__(self) -> None:
        (self.layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def blob(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (self.layout / "blobs" / "sha256" / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    def add_layer(self, tar: bytes) -> Image:
        compressed = gzip.compress(tar, compresslevel=1, mtime=0)
        digest, size = self.blob(compressed)
        self.layers.append((digest, size, f"sha256:{hashlib.sha256(tar).hexdigest()}"))
        return self

    def add_layer_file(self, path: Path) -> Image:
        """A tar.gz layer already on disk (e.g. from `tree_layer`)."""
        digest = hashlib.sha256()
        plain = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                plain.update(chunk)
        target = self.layout / "blobs" / "sha256" / digest.hexdigest()
        shutil.copyfile(path, target)
        self.layers.append((f"sha256:{digest.hexdigest()}", target.stat().st_size, f"sha256:{plain.hexdigest()}"))
        return self

    def manifest(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"Env": self.env}
        if self.entrypoint is not None:
            settings["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            settings["Cmd"] = self.cmd
        if self.working_dir:
            settings["WorkingDir"] = self.working_dir
        config = {
            "architecture": self.architecture, "os": "linux", "config": settings,
            "rootfs": {"type": "layers", "diff_ids": [diff for _, _, diff in self.layers]},
        }
        config_digest, config_size = self.blob(json.dumps(config).encode())
        return {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d, "size": s} for d, s, _ in self.layers],
        }

    def write(self, tag: str = "latest") -> Path:
        """Finish the layout with one manifest tagged `tag`."""
        digest, size = self.blob(json.dumps(self.manifest()).encode())
        self._index([{"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                      "annotations": {"org.opencontainers.image.ref.name": tag}}])
        return self.layout

    def _index(self, manifests: list[dict[str, Any]]) -> None:
        (self.layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                            "manifests": manifests}))


def multi_platform(layout: Path, images: list[Image], tag: str = "latest") -> Path:
    """One layout whose tag names an image index of `images` (all written into `layout`)."""
    entries = []
    for image in images:
        assert image.layout == layout
        digest, size = image.blob(json.dumps(image.manifest()).encode())
        entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                        "platform": {"architecture": image.architecture, "os": "linux"}})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    digest, size = images[0].blob(json.dumps(index).encode())
    images[0]._index([{"mediaType": OCI_INDEX, "digest": digest, "size": size,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}])
    return layout


# ------------------------------------------------------------------------------ a Python from the host


def _needed_libraries(binaries: list[str]) -> set[str]:
    found: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            parts = line.split()
            if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
                found.add(parts[parts.index("=>") + 1])
            elif parts and parts[0].startswith("/"):
                found.add(parts[0])
    return found


def _with_links(path: str, into: dict[str, Path]) -> None:
    """`path` as the host has it: each symlink on the way (e.g. /lib -> usr/lib) and the file."""
    current = "/"
    for part in path.strip("/").split("/"):
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            into[candidate.lstrip("/")] = Path(candidate)
            target = os.readlink(candidate)
            _with_links(target if target.startswith("/") else os.path.normpath(os.path.join(current, target)), into)
            current = os.path.realpath(candidate)
        else:
            current = candidate
    if os.path.isfile(current) and not os.path.islink(current):
        into[current.lstrip("/")] = Path(current)


def host_python_layer(path: Path, extra_binaries: tuple[str, ...] = ()) -> str:
    """A tar.gz layer holding the host's /usr/bin/python3, its standard library and the shared
    libraries it (and `extra_binaries`) load; returns its `major.minor`."""
    binary = os.path.realpath("/usr/bin/python3")
    version = subprocess.run([binary, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    stdlib = Path(f"/usr/lib/python{version}")
    sources: dict[str, Path] = {}
    _with_links("/usr/bin/python3", sources)
    sources[f"usr/lib/python{version}"] = stdlib
    for lib in _needed_libraries([binary, *map(str, (stdlib / "lib-dynload").glob("*.so")), *extra_binaries]):
        _with_links(lib, sources)
    tree_layer(path, sources, exclude=("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                                       "pydoc_data", "dist-packages", "site-packages",
                                       f"config-{version}-x86_64-linux-gnu"))
    return version
