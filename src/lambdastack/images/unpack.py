"""Image layers -> one root filesystem, applied in order as the OCI image spec says.

Each layer is a tar archive (plain, gzip or zstd, told by its first bytes). It is read
twice: first for its whiteouts, which delete what lower layers put there (`.wh.<name>`
removes `<name>`, `.wh..wh..opq` empties its directory), then for its content.

Nothing in a layer can write outside the root: entry names that are absolute or contain
`..` make the image invalid, and every path is resolved with the image's links taken as
the container sees them (`paths.resolve_in_root`), so a link to `/etc` means the image's
own /etc. Device nodes are skipped. Modes are kept except setuid/setgid, and everything is
made readable (and searchable, or executable where the owner may execute it) by every
user: the function runs as an unprivileged user that owns nothing in the image. Owners
are kept when the server runs as root. The uncompressed size is bounded.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lambdastack.images.errors import INVALID_IMAGE, Cancelled, ImageError
from lambdastack.images.paths import resolve_in_root, split

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# Lambda's limit for a container image is 10 GB.
MAX_BYTES = 10 * 1024 ** 3
MAX_ENTRIES = 2_000_000
MOUNT_POINTS = ("tmp", "proc", "dev", "opt")
_CHUNK = 1 << 20
# What an entry that does not fit the tree below it gets (not a fault of the server).
_ENTRY_ERRORS = {errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG}


def invalid(detail: str) -> ImageError:
    return ImageError(INVALID_IMAGE, f"The image is not valid: {detail}")


@dataclass
class Budget:
    bytes_left: int = MAX_BYTES
    entries_left: int = MAX_ENTRIES
    stopping: Callable[[], bool] = field(default=lambda: False)

    def entry(self) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise invalid(f"more than {MAX_ENTRIES} entries")
        if self.stopping():
            raise Cancelled()

    def spend(self, size: int) -> None:
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise invalid(f"larger than {MAX_BYTES} bytes unpacked")


def unpack_layers(layers: list[Path], root: Path, stopping: Callable[[], bool] = lambda: False) -> None:
    """Apply `layers` (lowest first) to the empty directory `root`."""
    budget = Budget(stopping=stopping)
    keep_owners = os.geteuid() == 0
    dir_modes: dict[str, tuple[int, int, int]] = {}
    for layer in layers:
        _apply(str(root), layer, budget, keep_owners, dir_modes)
    for path in sorted(dir_modes, key=lambda p: p.count("/"), reverse=True):
        mode, uid, gid = dir_modes[path]
        if os.path.isdir(path) and not os.path.islink(path):
            if keep_owners:
                os.lchown(path, uid, gid)
            os.chmod(path, mode)
    _mount_points(str(root))


def _apply(root: str, layer: Path, budget: Budget, keep_owners: bool,
           dir_modes: dict[str, tuple[int, int, int]]) -> None:
    opaque: list[str] = []
    deleted: list[str] = []
    with _members(layer) as members:
        for member, _ in members:
            budget.entry()
            name = _clean(member.name)
            parent, _, base = name.rpartition("/")
            if base == OPAQUE:
                opaque.append(parent)
            elif base.startswith(WHITEOUT):
                if base[len(WHITEOUT):] in ("", ".", ".."):
                    raise invalid(f"bad whiteout {member.name!r}")
                deleted.append(f"{parent}/{base[len(WHITEOUT):]}" if parent else base[len(WHITEOUT):])
    for folder in opaque:
        target = resolve_in_root(root, folder)
        if os.path.isdir(target) and not os.path.islink(target):
            for entry in os.listdir(target):
                _remove(os.path.join(target, entry))
    for name in deleted:
        parent, _, base = name.rpartition("/")
        _remove(os.path.join(resolve_in_root(root, parent), base))
    with _members(layer) as members:
        for member, tar in members:
            name = _clean(member.name)
            base = name.rpartition("/")[2]
            if not name or base.startswith(WHITEOUT):
                continue
            try:
                _extract(root, name, member, tar, budget, keep_owners, dir_modes)
            except OSError as e:
                if e.errno not in _ENTRY_ERRORS:
                    raise
                raise invalid(f"{member.name!r} cannot be unpacked: {e.strerror}")


def _corrupt_errors() -> tuple[type[BaseException], ...]:
    found: list[type[BaseException]] = [tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile]
    try:
        import zstandard

        found.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(found)


_CORRUPT = _corrupt_errors()


def _unreadable(e: BaseException) -> ImageError:
    return invalid(f"a layer is not a readable tar archive ({type(e).__name__}: {e})")


@contextmanager
def _members(layer: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]]:
    with open(layer, "rb") as raw:
        try:
            tar = tarfile.open(fileobj=_decompressed(raw), mode="r|", errorlevel=2)  # noqa: SIM115
        except _CORRUPT as e:
            raise _unreadable(e)
        with tar:
            yield _iterate(tar)


def _iterate(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    members = iter(tar)
    while True:
        try:
            member = next(members)
        except StopIteration:
            return
        except _CORRUPT as e:
            raise _unreadable(e)
        yield member, tar


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise invalid("a layer is compressed with zstd, which this server cannot read")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))
    return raw


def _clean(name: str) -> str:
    """The entry's path relative to the root; absolute paths and `..` are refused."""
    if name.startswith("/"):
        raise invalid(f"a layer has an absolute path: {name!r}")
    if "\0" in name:
        raise invalid("a layer has a path with a NUL byte")
    parts = split(name)
    if ".." in parts:
        raise invalid(f"a layer has a path leaving the root: {name!r}")
    return "/".join(parts)


def _directory(root: str, name: str) -> str:
    """The host directory for `name` inside the root, created (0755) where missing."""
    path = root
    done: list[str] = []
    for part in split(name):
        done.append(part)
        path = resolve_in_root(root, "/".join(done))
        if not os.path.lexists(path):
            # Every existing component of `path` is a real directory (links were resolved), so
            # creating the missing ones cannot follow a link.
            os.makedirs(path, 0o755)
        elif not os.path.isdir(path):
            raise invalid(f"{'/'.join(done)!r} is used as a directory but is not one")
    return path


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _extract(root: str, name: str, member: tarfile.TarInfo, tar: tarfile.TarFile, budget: Budget,
             keep_owners: bool, dir_modes: dict[str, tuple[int, int, int]]) -> None:
    parent, _, base = name.rpartition("/")
    folder = _directory(root, parent)
    target = os.path.join(folder, base)
    if member.isdir():
        if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)):
            os.unlink(target)
        if not os.path.lexists(target):
            os.mkdir(target, 0o755)
        dir_modes[target] = ((member.mode & 0o1777) | 0o555, member.uid, member.gid)
        return
    if member.ischr() or member.isblk():
        return  # device nodes come from the environment's own /dev
    if member.islnk():
        source_name = _clean(member.linkname)
        source_parent, _, source_base = source_name.rpartition("/")
        source = os.path.join(resolve_in_root(root, source_parent), source_base)
        if not os.path.lexists(source) or (os.path.isdir(source) and not os.path.islink(source)):
            raise invalid(f"hard link {name!r} points to {member.linkname!r}, which is not a file of the image")
        if os.path.lexists(target) and os.path.samefile(source, target) and not os.path.islink(target):
            return
        _remove(target)
        os.link(source, target, follow_symlinks=False)
        return
    _remove(target)
    if member.issym():
        os.symlink(member.linkname, target)
        if keep_owners:
            os.lchown(target, member.uid, member.gid)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    elif member.isfifo():
        os.mkfifo(target, 0o644)
    elif member.isreg():
        budget.spend(member.size)
        _write_file(target, member, tar, budget, keep_owners)


def _write_file(target: str, member: tarfile.TarInfo, tar: tarfile.TarFile, budget: Budget,
                keep_owners: bool) -> None:
    source = tar.extractfile(member)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        while source is not None:
            try:
                chunk = source.read(_CHUNK)
            except _CORRUPT as e:
                raise _unreadable(e)
            if not chunk:
                break
            if budget.stopping():
                raise Cancelled()
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        mode = (member.mode & 0o777) | 0o444
        if mode & 0o100:
            mode |= 0o111
        if keep_owners:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, mode)
        os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)


def _mount_points(root: str) -> None:
    """Where an environment mounts /tmp, /proc, /dev and /opt: real directories of the root."""
    for name in MOUNT_POINTS:
        path = os.path.join(root, name)
        if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
            os.unlink(path)
        if not os.path.lexists(path):
            os.mkdir(path, 0o755)
    os.chmod(root, 0o755)
