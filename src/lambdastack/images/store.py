"""Pulled images: `<folder>/blobs/sha256/<hex>` and `<folder>/roots/<hex>/`.

A root filesystem is named by the digest of the platform manifest it was unpacked from,
so every function (and every environment) using the same image shares one read-only copy.
It is unpacked into a temporary directory and renamed into place: a root under its final
name is complete. Roots and blobs no function uses any more are removed by `prune`.

Pulls and `prune` exclude each other: a caller holds `busy()` from its pull until the
function that needs the root is committed (a root nothing references yet is not garbage),
a prune asked for while anyone is busy does nothing (the last one busy prunes after), and
a pull waits for a prune under way to end (it could remove a blob the pull just found).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdastack.images import errors
from lambdastack.images.blobcache import BlobCache
from lambdastack.images.reference import ImageReference, InvalidReference
from lambdastack.images.registry import RegistryClient, ResolvedImage
from lambdastack.images.unpack import unpack_layers

log = logging.getLogger("lambdastack.images")

_TEMP_PREFIX = ".tmp-"
_METADATA = ".lambdastack-image.json"  # beside each root: what it was unpacked from


@dataclass(frozen=True)
class PulledImage:
    """An image ready to run: where its root is and how the image says to start it."""

    resolved_uri: str  # registry/repository@sha256:... (what the reference pointed to)
    digest: str  # sha256:... of that manifest or index
    root_id: str  # hex digest of the platform manifest: the root's directory name
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]  # "NAME=value"
    working_dir: str

    def as_config(self) -> dict[str, Any]:
        """How a function's stored configuration keeps it."""
        return {
            "ResolvedUri": self.resolved_uri, "Digest": self.digest, "Root": self.root_id,
            "Entrypoint": self.entrypoint, "Cmd": self.cmd, "Env": self.env, "WorkingDir": self.working_dir,
        }

    @classmethod
    def from_config(cls, kept: dict[str, Any]) -> PulledImage:
        return cls(
            resolved_uri=str(kept.get("ResolvedUri", "")), digest=str(kept.get("Digest", "")),
            root_id=str(kept.get("Root", "")), entrypoint=_strings(kept.get("Entrypoint")),
            cmd=_strings(kept.get("Cmd")), env=_strings(kept.get("Env")),
            working_dir=str(kept.get("WorkingDir") or ""),
        )


def roots_folder(folder: Path) -> Path:
    return Path(folder) / "roots"


class ImageStore:
    def __init__(self, folder: Path, client: RegistryClient) -> None:
        self.folder = Path(folder)
        self.blobs = BlobCache(self.folder / "blobs")
        self.roots = roots_folder(self.folder)
        self.client = client
        self._lock = threading.Lock()
        self._unpacking: dict[str, threading.Lock] = {}
        self._activity = threading.Condition()
        self._busy = 0  # callers between the start of a pull and the commit of what it found
        self._pruning = False
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        self.client.close()

    def root_path(self, root_id: str) -> Path:
        return self.roots / root_id

    # ------------------------------------------------------------------ pull

    def exists(self, uri: str) -> bool:
        """False only if the image's registry says `uri` names nothing (see RegistryClient.exists)."""
        try:
            return self.client.exists(ImageReference.parse(uri))
        except InvalidReference:
            return True  # not for us to say: the request's own checks refuse it

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Hold off `prune` while pulling and recording what was pulled."""
        with self._activity:
            while self._pruning:
                self._activity.wait()
            self._busy += 1
        try:
            yield
        finally:
            with self._activity:
                self._busy -= 1
                self._activity.notify_all()

    def pull(self, uri: str, architecture: str = "x86_64") -> PulledImage:
        """Resolve `uri`, fetch what is missing, unpack it once; raises ImageError."""
        try:
            ref = ImageReference.parse(uri)
        except InvalidReference:
            raise errors.invalid(uri, "not an image reference of the form registry/repository:tag or @sha256:digest")
        image = self.client.resolve(ref, architecture)
        root_id = image.manifest_digest.split(":", 1)[1]
        with self.busy():
            if not self.root_path(root_id).is_dir():
                self._materialize(image, root_id)
        settings = image.settings
        return PulledImage(
            resolved_uri=ref.pinned(image.digest),
            digest=image.digest,
            root_id=root_id,
            entrypoint=_strings(settings.get("Entrypoint")),
            cmd=_strings(settings.get("Cmd")),
            env=_strings(settings.get("Env")),
            working_dir=str(settings.get("WorkingDir") or ""),
        )

    def _materialize(self, image: ResolvedImage, root_id: str) -> None:
        with self._lock:
            lock = self._unpacking.setdefault(root_id, threading.Lock())
        with lock:
            if self.root_path(root_id).is_dir():
                return
            self.blobs.put_bytes(image.manifest_digest, image.manifest)
            self.blobs.put_bytes(image.config_digest, image.config)
            paths = []
            for layer in image.layers:
                if not self.blobs.has(layer.digest):
                    log.info("fetching %s layer %s (%d bytes)", image.reference, layer.digest, layer.size)
                paths.append(self.blobs.put(layer.digest, self.client.blob_chunks(image.reference, layer.digest),
                                            layer.size or None, lambda: self._stopping))
            self._unpack(paths, root_id, image)

    def _unpack(self, layers: list[Path], root_id: str, image: ResolvedImage) -> None:
        self.roots.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{root_id[:12]}-", dir=self.roots))
        try:
            unpack_layers(layers, temp, lambda: self._stopping)
            (self.roots / f"{_TEMP_PREFIX}meta-{root_id}").write_text(json.dumps({
                "manifest": image.manifest_digest, "config": image.config_digest,
                "layers": [layer.digest for layer in image.layers], "from": str(image.reference),
            }))
            os.rename(self.roots / f"{_TEMP_PREFIX}meta-{root_id}", self.roots / f"{root_id}{_METADATA}")
            os.rename(temp, self.root_path(root_id))
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        log.info("unpacked %s into %s", image.reference, self.root_path(root_id))

    # ------------------------------------------------------------------ removal

    def prune(self, in_use: Callable[[str], bool]) -> list[str]:
        """Remove every root (and the blobs only it used) for which `in_use(root id)` is false.

        Does nothing while a pull is busy: returns the ids of the roots removed.
        """
        with self._activity:
            if self._busy or self._pruning:
                return []
            self._pruning = True
        try:
            return self._prune(in_use)
        finally:
            with self._activity:
                self._pruning = False
                self._activity.notify_all()

    def _prune(self, in_use: Callable[[str], bool]) -> list[str]:
        removed: list[str] = []
        if not self.roots.is_dir():
            return removed
        kept_blobs: set[str] = set()
        doomed_blobs: set[str] = set()
        for entry in sorted(self.roots.iterdir()):
            if entry.name.startswith(_TEMP_PREFIX):
                _discard(entry)  # left by a pull that was cut off: none is under way now
                continue
            if entry.name.endswith(_METADATA):
                continue
            root_id = entry.name
            blobs = _blobs_of(self.roots / f"{root_id}{_METADATA}")
            if in_use(root_id):
                kept_blobs |= blobs
                continue
            doomed = self.roots / f"{_TEMP_PREFIX}rm-{root_id}"
            try:
                os.rename(entry, doomed)
            except FileNotFoundError:
                continue
            (self.roots / f"{root_id}{_METADATA}").unlink(missing_ok=True)
            _discard(doomed)
            doomed_blobs |= blobs
            removed.append(root_id)
        for digest in doomed_blobs - kept_blobs:
            self.blobs.remove(digest)
        self.blobs.clean_temporaries()
        return removed


def _blobs_of(metadata: Path) -> set[str]:
    try:
        document = json.loads(metadata.read_text())
    except (OSError, ValueError):
        return set()
    return {document.get("manifest"), document.get("config"), *(document.get("layers") or [])} - {None}


def _discard(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=_make_writable)
    else:
        path.unlink(missing_ok=True)


def _make_writable(function: Any, path: str, _: object) -> None:
    """Directories of an image may be read-only: open the parent up and try once more."""
    try:
        parent = os.path.dirname(path)
        os.chmod(parent, os.stat(parent).st_mode | 0o700)
        function(path)
    except OSError:
        log.warning("could not remove %s", path)


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, str):
        return [value]
    return []


def images_folder(data_dir: Path) -> Path:
    return Path(data_dir) / "images"


def with_roots(code_path: Callable[[str], Path], folder: Path) -> Callable[[str], Path]:
    """`code_path` that also finds an image's root by its id: the engine's one lookup for both."""
    roots = roots_folder(folder)

    def path(sha256_hex: str) -> Path:
        root = roots / sha256_hex
        return root if root.is_dir() else code_path(sha256_hex)

    return path
