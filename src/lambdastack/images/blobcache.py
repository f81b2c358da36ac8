"""Blobs (layers, configs, manifests) on disk by digest: `<folder>/sha256/<hex>`.

A blob is written to a temporary file while its SHA-256 is computed, and renamed into
place only if it matches the digest that named it (and the size the manifest declared):
a file under its final name is always complete and verified.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from lambdastack.images.errors import INVALID_IMAGE, Cancelled, ImageError
from lambdastack.images.reference import DIGEST

_TEMP_PREFIX = ".tmp-"


class BlobCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "sha256"

    def path(self, digest: str) -> Path:
        if not DIGEST.match(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.folder / digest.split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_bytes(self, digest: str, data: bytes) -> Path:
        return self.put(digest, [data], len(data))

    def put(self, digest: str, chunks: Iterable[bytes], size: int | None = None,
            stopping: Callable[[], bool] = lambda: False) -> Path:
        """Store the blob whose content `chunks` yields, verified against `digest` (and `size`)."""
        final = self.path(digest)
        if final.is_file():
            return final
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self.folder)
        try:
            hasher = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    if stopping():
                        raise Cancelled()
                    hasher.update(chunk)
                    written += len(chunk)
                    if size is not None and written > size:
                        raise ImageError(INVALID_IMAGE, f"blob {digest} is larger than the {size} bytes declared")
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if "sha256:" + hasher.hexdigest() != digest:
                raise ImageError(INVALID_IMAGE, f"blob {digest} does not match its digest")
            if size is not None and written != size:
                raise ImageError(INVALID_IMAGE, f"blob {digest} has {written} bytes, not the {size} declared")
            os.chmod(temp, 0o644)
            os.rename(temp, final)
        except BaseException:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            raise
        return final

    def remove(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass

    def clean_temporaries(self) -> None:
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                if entry.name.startswith(_TEMP_PREFIX):
                    entry.unlink(missing_ok=True)
