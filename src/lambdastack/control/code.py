"""Function code: zips stored once by SHA-256, each unpacked once into its own directory.

`<data_dir>/blobs/<hex[:2]>/<hex>` is the zip exactly as uploaded (what GetFunction hands
back); `<data_dir>/code/<hex>/` is its content, unpacked after the checks in `codezip`
passed: directories 0755, files 0644 (0755 when the zip marks them executable), owned by
the server's user. The engine mounts that directory read-only as /var/task. A directory
is unpacked into a temporary name and renamed into place, so one that exists is complete.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import io
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lambdastack import errors
from lambdastack.control import codezip
from lambdastack.control.limits import ZIP_MAX_BYTES
from lambdastack.store.blobs import BlobStore, fsync_dir

log = logging.getLogger("lambdastack.control.code")

_TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class CodeRef:
    sha256_hex: str
    sha256_b64: str  # what Lambda calls CodeSha256
    size: int  # bytes of the zip: CodeSize
    unzipped_size: int


def _ref(data: bytes, unzipped: int) -> CodeRef:
    digest = hashlib.sha256(data).digest()
    return CodeRef(digest.hex(), base64.b64encode(digest).decode(), len(data), unzipped)


def _sync_filesystem(path: Path) -> None:
    """Flush everything written under `path` to disk (syncfs where available, else sync)."""
    libc_name = ctypes.util.find_library("c")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs = getattr(ctypes.CDLL(libc_name, use_errno=True), "syncfs", None) if libc_name else None
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class CodeStore:
    def __init__(self, data_dir: Path) -> None:
        self.blobs = BlobStore(Path(data_dir) / "blobs")
        self.code_root = Path(data_dir) / "code"

    # -- the engine's view ---------------------------------------------------------------

    def zip_path(self, sha256_hex: str) -> Path:
        """The stored zip (may not exist if the code was deleted)."""
        return self.blobs.path(sha256_hex)

    def unpacked_path(self, sha256_hex: str) -> Path:
        """The unpacked code; unpacked again from the stored zip if the directory is missing."""
        path = self._dir(sha256_hex)
        if path.is_dir():
            return path
        blob = self.blobs.path(sha256_hex)
        if not blob.is_file():
            raise FileNotFoundError(f"no code stored for {sha256_hex}")
        self._unpack(blob.read_bytes(), sha256_hex)
        return path

    # -- control's view ------------------------------------------------------------------

    def check_zip(self, data: bytes, max_zipped: int = ZIP_MAX_BYTES) -> CodeRef:
        """Run every check on a package without storing anything (UpdateFunctionCode DryRun)."""
        _check_size(data, max_zipped)
        return _ref(data, codezip.unpack(data, None))

    def put_zip(self, data: bytes, max_zipped: int = ZIP_MAX_BYTES) -> CodeRef:
        """Check, store durably and unpack a package; storing the same bytes again is cheap.

        `max_zipped`: 50 MB for a package sent inline; a package read from S3 is only held to
        the unzipped limit, as on Lambda.
        """
        _check_size(data, max_zipped)
        sha_hex = hashlib.sha256(data).hexdigest()
        if self.blobs.exists(sha_hex) and self._dir(sha_hex).is_dir():
            return _ref(data, _declared_size(data))
        unzipped = self._unpack(data, sha_hex)
        self.blobs.put(data, sha_hex)
        return _ref(data, unzipped)

    def remove(self, sha256_hex: str) -> None:
        """Delete a package and its unpacked directory (the caller checked it is unreferenced)."""
        self.blobs.delete(sha256_hex)
        path = self._dir(sha256_hex)
        if path.is_dir():
            # Rename first so that a crash mid-removal never leaves a half-deleted tree
            # under the name `unpacked_path` trusts.
            doomed = self.code_root / f"{_TEMP_PREFIX}rm-{sha256_hex}-{os.getpid()}"
            try:
                os.rename(path, doomed)
            except FileNotFoundError:
                return
            shutil.rmtree(doomed, ignore_errors=True)

    def collect(self, referenced: set[str]) -> list[str]:
        """Remove every package nobody references, and debris of interrupted writes.

        Only safe while nothing else writes code (at start-up).
        """
        removed: list[str] = []
        for sha in list(self.blobs.all()):
            if sha not in referenced:
                self.remove(sha)
                removed.append(sha)
        if self.code_root.is_dir():
            for entry in self.code_root.iterdir():
                if entry.name.startswith(_TEMP_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name not in referenced:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
        return removed

    # -- internals -----------------------------------------------------------------------

    def _dir(self, sha256_hex: str) -> Path:
        self.blobs.path(sha256_hex)  # validates the name
        return self.code_root / sha256_hex

    def _unpack(self, data: bytes, sha_hex: str) -> int:
        self.code_root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=self.code_root))
        try:
            os.chmod(temp, 0o755)
            unzipped = codezip.unpack(data, temp)
            _sync_filesystem(temp)
            try:
                os.rename(temp, self._dir(sha_hex))
            except OSError:
                # Someone unpacked the same package meanwhile; theirs is as good as ours.
                if not self._dir(sha_hex).is_dir():
                    raise
                shutil.rmtree(temp, ignore_errors=True)
            fsync_dir(self.code_root)
            return unzipped
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def _check_size(data: bytes, max_zipped: int) -> None:
    if len(data) > max_zipped:
        raise errors.InvalidParameterValue(
            f"Zipped size must be smaller than {max_zipped} bytes (the package is {len(data)} bytes)"
        )


def _declared_size(data: bytes) -> int:
    """Unzipped size of a package that already passed every check (so its headers are honest)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(info.file_size for info in archive.infolist() if not info.is_dir())
