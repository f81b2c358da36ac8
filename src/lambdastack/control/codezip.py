"""Check a deployment package before anything of it is stored, and unpack it safely.

Nothing in an uploaded zip is trusted: not its names (`../`, absolute paths, backslash
tricks), not its symlinks (they may point out of the package, or a later entry may try
to write through one), not its sizes (decompressed bytes are counted as they come out,
never taken from headers), not its entry count. Every refusal is an
InvalidParameterValueException that says what is wrong.
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lambdastack import errors
from lambdastack.control.limits import UNZIPPED_MAX_BYTES

NOT_A_ZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
UNZIPPED_TOO_LARGE = f"Unzipped size must be smaller than {UNZIPPED_MAX_BYTES} bytes"

MAX_ENTRIES = 100_000
MAX_SYMLINK_TARGET = 4096
MAX_SYMLINK_HOPS = 40
# Deflate alone cannot exceed ~1032:1; beyond this ratio the archive is a bomb, not code.
MAX_RATIO = 1000
RATIO_FLOOR = 16 * 1024 * 1024
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def _refuse(detail: str) -> errors.LambdaError:
    return errors.InvalidParameterValue(f"Could not unzip uploaded file. {detail}")


@dataclass(frozen=True)
class Entry:
    path: str  # normalized, relative, '/'-separated, never empty
    kind: str  # "file" | "dir" | "symlink"
    info: zipfile.ZipInfo
    executable: bool = False


def _unix_mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _normalize(raw: str) -> str:
    """The entry's path inside the package; refuses anything that could land outside it."""
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    # Backslashes count as separators here: an archive made on Windows means them as such,
    # and `..\\x` must not slip past a check that only looks for '/'.
    unified = raw.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise _refuse(f"The entry '{shown}' has an absolute path.")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(f"The entry '{shown}' points outside the deployment package.")
    if any("\x00" in p for p in parts):
        raise _refuse(f"The entry '{shown}' has an invalid name.")
    return "/".join(parts)


def _resolve_link(path: str, target: str, links: dict[str, str]) -> bool:
    """Follow `path -> target` the way the kernel would; False if it leaves the package.

    Targets may go through other symlinks of the package, so `..` is resolved against
    where each link really points, not against the text of the path.
    """
    hops = 0
    current = path.split("/")[:-1]
    pending = target.split("/")
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return False
            current.pop()
            continue
        current.append(part)
        joined = "/".join(current)
        if joined in links:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return False
            link_target = links[joined]
            if link_target.startswith("/"):
                return False
            current.pop()
            pending = link_target.split("/") + pending
    return True


def _declared_entries(data: bytes) -> int | None:
    """The entry count the end-of-central-directory record announces (None if unreadable).

    Read before the central directory is parsed, so that an archive announcing millions of
    entries costs nothing to refuse.
    """
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, at + 10)
    if count != 0xFFFF or at < 20 or data[at - 20 : at - 16] != b"PK\x06\x07":
        return int(count)
    (record,) = struct.unpack_from("<Q", data, at - 12)
    if record + 40 > len(data) or data[record : record + 4] != b"PK\x06\x06":
        return None
    (count64,) = struct.unpack_from("<Q", data, record + 32)
    return int(count64)


def inspect(data: bytes) -> tuple[zipfile.ZipFile, list[Entry]]:
    """Structural checks (names, types, duplicates, symlinks, declared sizes)."""
    announced = _declared_entries(data)
    if announced is not None and announced > MAX_ENTRIES:
        raise _refuse(f"The package has {announced} entries; at most {MAX_ENTRIES} are allowed.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError):
        raise errors.InvalidParameterValue(NOT_A_ZIP)
    if len(infos) > MAX_ENTRIES:
        raise _refuse(f"The package has {len(infos)} entries; at most {MAX_ENTRIES} are allowed.")
    entries: list[Entry] = []
    seen: set[str] = set()
    declared = 0
    links: dict[str, str] = {}
    for info in infos:
        if info.flag_bits & 0x1:
            raise _refuse(f"The entry '{info.filename}' is encrypted.")
        path = _normalize(info.filename)
        mode = _unix_mode(info)
        kind_bits = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            kind = "symlink"
        elif info.is_dir() or stat.S_ISDIR(mode):
            kind = "dir"
        elif kind_bits in (0, stat.S_IFREG):
            kind = "file"
        else:
            raise _refuse(f"The entry '{info.filename}' is not a regular file, directory or symlink.")
        if not path:
            if kind == "dir":
                continue
            raise _refuse(f"The entry '{info.filename}' has an empty name.")
        if path in seen:
            raise _refuse(f"The entry '{path}' appears more than once.")
        seen.add(path)
        if info.file_size > UNZIPPED_MAX_BYTES:
            raise errors.InvalidParameterValue(UNZIPPED_TOO_LARGE)
        declared += info.file_size
        if declared > UNZIPPED_MAX_BYTES:
            raise errors.InvalidParameterValue(UNZIPPED_TOO_LARGE)
        if kind == "symlink":
            if info.file_size > MAX_SYMLINK_TARGET:
                raise _refuse(f"The symlink '{path}' has an overlong target.")
            links[path] = _read_small(archive, info)
        entries.append(Entry(path, kind, info, executable=bool(mode & 0o111) and kind == "file"))

    for entry in entries:
        # Nothing may sit below a file or a symlink: writing it would mean writing through the link.
        parent = entry.path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in links:
                raise _refuse(f"The entry '{entry.path}' lies under the symlink '{parent}'.")
        if entry.kind == "symlink":
            target = links[entry.path]
            if not target or "\x00" in target:
                raise _refuse(f"The symlink '{entry.path}' has an invalid target.")
            if target.startswith("/") or not _resolve_link(entry.path, target, links):
                raise _refuse(f"The symlink '{entry.path}' points outside the deployment package (or loops).")
    files = {e.path for e in entries if e.kind == "file"}
    for entry in entries:
        parent = entry.path
        while "/" in parent:
            parent = parent.rsplit("/", 1)[0]
            if parent in files:
                raise _refuse(f"The entry '{entry.path}' lies under the file '{parent}'.")
    return archive, entries


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    try:
        with archive.open(info) as f:
            raw = f.read(MAX_SYMLINK_TARGET + 1)
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError, OSError, ValueError):
        raise errors.InvalidParameterValue(NOT_A_ZIP)
    if len(raw) > MAX_SYMLINK_TARGET:
        raise _refuse(f"The symlink '{info.filename}' has an overlong target.")
    return raw.decode("utf-8", "surrogateescape")


def unpack(data: bytes, dest: Path | None) -> int:
    """Check `data` fully and unpack it into the empty directory `dest` (or only count, if None).

    Returns the real number of bytes the package unzips to. Symlinks are created last, so
    no file is ever written through one; files are created with O_EXCL|O_NOFOLLOW anyway.
    """
    archive, entries = inspect(data)
    limit = min(UNZIPPED_MAX_BYTES, max(RATIO_FLOOR, MAX_RATIO * len(data)))
    total = 0
    try:
        for entry in entries:
            if entry.kind == "symlink":
                total += entry.info.file_size
                continue
            if dest is None:
                if entry.kind == "file":
                    total = _copy(archive, entry, None, total, limit)
                continue
            target = dest / entry.path
            if entry.kind == "dir":
                _mkdirs(dest, entry.path)
                continue
            if "/" in entry.path:
                _mkdirs(dest, entry.path.rsplit("/", 1)[0])
            total = _copy(archive, entry, target, total, limit)
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError, ValueError):
        raise errors.InvalidParameterValue(NOT_A_ZIP)
    if dest is not None:
        for entry in entries:
            if entry.kind == "symlink":
                if "/" in entry.path:
                    _mkdirs(dest, entry.path.rsplit("/", 1)[0])
                os.symlink(_read_small(archive, entry.info), dest / entry.path)
    return total


def _copy(archive: zipfile.ZipFile, entry: Entry, target: Path | None, total: int, limit: int) -> int:
    fd = -1
    if target is not None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with archive.open(entry.info) as src:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    if total > UNZIPPED_MAX_BYTES:
                        raise errors.InvalidParameterValue(UNZIPPED_TOO_LARGE)
                    raise _refuse(
                        f"The package expands more than {MAX_RATIO} times its size; it looks like a zip bomb."
                    )
                if fd >= 0:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
        if fd >= 0:
            os.fchmod(fd, 0o755 if entry.executable else 0o644)
    finally:
        if fd >= 0:
            os.close(fd)
    return total


def _mkdirs(root: Path, relative: str) -> None:
    current = root
    for part in relative.split("/"):
        current = current / part
        try:
            os.mkdir(current, 0o755)
            os.chmod(current, 0o755)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise _refuse(f"The entry '{relative}' conflicts with another entry.")
