"""Code blobs, stored once each under their SHA-256: `<root>/<hex[:2]>/<hex>`.

A blob is written to a temporary file, fsynced, renamed into place and its directory
fsynced, so a blob that exists under its final name is complete and durable. Callers
write the blob before committing the metadata that refers to it; a crash in between
leaves only an unreferenced blob, which garbage collection removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HEX = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256_hex: str) -> Path:
        if not _HEX.match(sha256_hex):
            raise ValueError(f"not a SHA-256 in hex: {sha256_hex!r}")
        return self.root / sha256_hex[:2] / sha256_hex

    def exists(self, sha256_hex: str) -> bool:
        return self.path(sha256_hex).is_file()

    def put(self, data: bytes, sha256_hex: str | None = None) -> str:
        """Store `data` durably; return its SHA-256 in hex. Storing the same bytes twice is a no-op."""
        digest = sha256_hex or hashlib.sha256(data).hexdigest()
        final = self.path(digest)
        if final.is_file():
            return digest
        folder = final.parent
        new_folder = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if new_folder:
            fsync_dir(self.root)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temp, 0o644)
            os.rename(temp, final)
        except BaseException:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            raise
        fsync_dir(folder)
        return digest

    def read(self, sha256_hex: str) -> bytes:
        return self.path(sha256_hex).read_bytes()

    def delete(self, sha256_hex: str) -> None:
        try:
            self.path(sha256_hex).unlink()
        except FileNotFoundError:
            pass

    def all(self) -> Iterator[str]:
        """Every complete blob; removes temporary files a crash left behind."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(_TEMP_PREFIX):
                    entry.unlink(missing_ok=True)
                elif _HEX.match(entry.name):
                    yield entry.name
