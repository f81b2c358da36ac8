"""The seccomp filter every execution environment runs under, compiled with libseccomp.

It refuses (EPERM) the system calls no function needs and that widen an attacker's reach:
mounting, tracing other processes, loading kernel code, rebooting, creating namespaces,
BPF, the kernel keyring, and the like. Everything else is allowed, like Docker's default
profile in spirit but shorter. `clone3` answers ENOSYS so that C libraries fall back to
`clone`, whose namespace flags the filter can inspect.

The filter is compiled once per zygote and exported as BPF bytes, which each new
environment loads with a single prctl.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile

DENIED = (
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "unshare", "setns",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key",
    "open_by_handle_at", "name_to_handle_at", "lookup_dcookie",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
    "iopl", "ioperm", "vhangup", "sethostname", "setdomainname", "personality",
    "nfsservctl", "uselib", "_sysctl", "create_module", "get_kernel_syms", "query_module",
    "fanotify_init",
)

NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7


def SCMP_ACT_ERRNO(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def _libseccomp() -> ctypes.CDLL:
    for name in ("libseccomp.so.2", "libseccomp.so"):
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError:
            continue
    else:
        raise OSError(errno.ENOENT, "libseccomp is not installed (Debian: libseccomp2)")
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(_ArgCmp)
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


# What a SnapStart template may do beyond an environment: make copies of itself, each in
# namespaces of its own (inside the template's own user namespace), and attach the /tmp disk
# the server made for each (move_mount: no more than `mount` can already do there). Each copy
# stacks the environment filter on top before any of its code runs again.
TEMPLATE_ALLOWED = ("unshare", "mount", "move_mount")


def compile_filter(template: bool = False) -> bytes:
    """Return the environment filter (or the SnapStart template's) as raw BPF for this machine."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.EINVAL, "seccomp_init failed")
    try:
        deny = SCMP_ACT_ERRNO(errno.EPERM)
        for name in DENIED:
            if template and name in TEMPLATE_ALLOWED:
                continue
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # not a system call on this architecture
            _rule(lib, ctx, deny, nr, None)
        clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
        if clone3 >= 0:
            _rule(lib, ctx, SCMP_ACT_ERRNO(errno.ENOSYS), clone3, None)
        clone = lib.seccomp_syscall_resolve_name(b"clone")
        for flag in NAMESPACE_FLAGS:
            _rule(lib, ctx, deny, clone, _ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag))
        with tempfile.TemporaryFile() as f:
            if lib.seccomp_export_bpf(ctx, f.fileno()) != 0:
                raise OSError(errno.EINVAL, "seccomp_export_bpf failed")
            f.seek(0)
            return f.read()
    finally:
        lib.seccomp_release(ctx)


def _rule(lib: ctypes.CDLL, ctx: int, action: int, nr: int, cmp: _ArgCmp | None) -> None:
    if cmp is None:
        result = lib.seccomp_rule_add_array(ctx, action, nr, 0, None)
    else:
        arr = (_ArgCmp * 1)(cmp)
        result = lib.seccomp_rule_add_array(ctx, action, nr, 1, arr)
    if result != 0:
        raise OSError(-result, f"seccomp_rule_add({nr}): {os.strerror(-result)}")
