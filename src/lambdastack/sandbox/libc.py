"""Thin ctypes bindings for the Linux system calls the standard library lacks."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# x86_64 system call numbers
_SYS_PIVOT_ROOT = 155
_SYS_CAPSET = 126
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_SYS_CLOSE_RANGE = 436
_SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6


def _check(result: int, what: str) -> int:
    if result == -1 or (result < 0 and what != "syscall"):
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(
        source.encode() if source is not None else None,
        target.encode(),
        fstype.encode() if fstype is not None else None,
        ctypes.c_ulong(flags),
        data.encode() if data is not None else None,
    )
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def umount2(target: str, flags: int = 0) -> None:
    if _libc.umount2(target.encode(), ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(_SYS_PIVOT_ROOT, new_root.encode(), put_old.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err)}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _syscall(number: int, what: str, *args: object) -> int:
    result = _libc.syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return int(result)


def open_tree_clone(path: str) -> int:
    """A detached copy of the mount tree at `path` (a descriptor that can be attached elsewhere)."""
    return _syscall(_SYS_OPEN_TREE, "open_tree", AT_FDCWD, path.encode(),
                    ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE))


def mount_setattr(fd: int, attr_set: int, userns_fd: int = 0) -> None:
    """Set mount attributes on a detached tree; with MOUNT_ATTR_IDMAP, `userns_fd` gives the idmapping."""
    attr = _MountAttr(attr_set, 0, 0, userns_fd)
    _syscall(_SYS_MOUNT_SETATTR, "mount_setattr", fd, b"", ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE),
             ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))


def move_mount(fd: int, target: str) -> None:
    """Attach a detached mount tree at `target` (in the caller's mount namespace)."""
    _syscall(_SYS_MOVE_MOUNT, "move_mount", fd, b"", AT_FDCWD, target.encode(),
             ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))


def fsmount_new(fstype: str, options: dict[str, str | None], attrs: int) -> int:
    """A new superblock of `fstype` as a detached mount (a descriptor to attach with move_mount).

    `options` are the filesystem's (None: a flag); `attrs` the mount's (MOUNT_ATTR_*).
    """
    context = _syscall(_SYS_FSOPEN, "fsopen", fstype.encode(), ctypes.c_uint(FSOPEN_CLOEXEC))
    try:
        for key, value in options.items():
            if value is None:
                _syscall(_SYS_FSCONFIG, "fsconfig", context, ctypes.c_uint(FSCONFIG_SET_FLAG), key.encode(), None, 0)
            else:
                _syscall(_SYS_FSCONFIG, "fsconfig", context, ctypes.c_uint(FSCONFIG_SET_STRING), key.encode(),
                         value.encode(), 0)
        _syscall(_SYS_FSCONFIG, "fsconfig", context, ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None, 0)
        return _syscall(_SYS_FSMOUNT, "fsmount", context, ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attrs))
    finally:
        os.close(context)


def close_range(first: int) -> bool:
    """Close every descriptor from `first` up; False where the kernel lacks close_range."""
    return _libc.syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(0)) == 0


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result = _libc.prctl(
        ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)
    )
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}): {os.strerror(err)}")
    return int(result)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


CAP_SETPCAP = 8
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21


def drop_bounding_set(keep: tuple[int, ...] = ()) -> None:
    """Empty the capability bounding set (but `keep`): no other capability can ever be gained
    again, even by exec.

    Needs CAP_SETPCAP, so it must run before the uid changes.
    """
    last_cap = 40
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
    except OSError:
        pass
    for cap in range(last_cap + 1):
        if cap in keep:
            continue
        try:
            prctl(PR_CAPBSET_DROP, cap)
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: a capability this kernel does not know
                raise


def clear_capabilities(keep: tuple[int, ...] = ()) -> None:
    """Drop the effective, permitted, inheritable and ambient capability sets (all but `keep`
    from the first two)."""
    try:
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    for cap in keep:
        data[cap // 32].effective |= 1 << (cap % 32)
        data[cap // 32].permitted |= 1 << (cap % 32)
    if _libc.syscall(_SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp_filter(bpf: bytes) -> None:
    """Load a classic-BPF seccomp program (8 bytes per instruction). Requires no_new_privs or CAP_SYS_ADMIN."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def find_library(name: str) -> str | None:
    return ctypes.util.find_library(name)
