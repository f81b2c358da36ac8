"""Fork a child that is born in its cgroup (cgroup v2: clone3 with CLONE_INTO_CGROUP).

Moving a process into a cgroup (a write to `cgroup.procs`) takes the kernel's
`cgroup_threadgroup_rwsem` for writing, and the first such move after a quiet moment waits for
an RCU grace period: 9 to 15 ms on a 2-core VM, the largest part of an environment built on
demand. A child cloned into its cgroup is never moved, so it waits for nothing (Linux 5.7+,
cgroup v2 only; the v1 hierarchies have no such clone). Python has no clone3, so this is
os.fork() with clone3 in the middle: the interpreter's own before/after-fork steps around the
system call, as os.fork() runs them. Where clone3 is refused (an older kernel, a seccomp
filter of a container runtime), `fork_into` says so and the caller forks and moves the child.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
from typing import Optional

CLONE_INTO_CGROUP = 0x200000000
_SYS_CLONE3 = {"x86_64": 435, "aarch64": 435}.get(platform.machine())
# struct clone_args (linux/sched.h, version 2): flags, pidfd, child_tid, parent_tid, exit_signal,
# stack, stack_size, tls, set_tid, set_tid_size, cgroup.
_ARGS = struct.Struct("=11Q")

_unavailable = _SYS_CLONE3 is None
# PyDLL: the system call runs with the interpreter's lock held, as os.fork()'s fork() does.
_py = ctypes.PyDLL(None, use_errno=True)
_py.syscall.restype = ctypes.c_long


def fork_into(cgroup_dir: str) -> Optional[int]:
    """Like os.fork(), with the child in cgroup `cgroup_dir` from birth; None if this host
    cannot (the caller then forks and moves the child itself)."""
    global _unavailable
    if _unavailable or _SYS_CLONE3 is None:
        return None
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    args = ctypes.create_string_buffer(
        _ARGS.pack(CLONE_INTO_CGROUP, 0, 0, 0, int(signal.SIGCHLD), 0, 0, 0, 0, 0, cgroup_fd), _ARGS.size)
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = int(_py.syscall(ctypes.c_long(_SYS_CLONE3), args, ctypes.c_size_t(_ARGS.size)))
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        os.close(cgroup_fd)
        return 0
    error = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    os.close(cgroup_fd)
    if pid < 0:
        if error in (errno.ENOSYS, errno.EPERM):  # an older kernel, or a seccomp filter: never again
            _unavailable = True
            return None
        if error in (errno.EINVAL, errno.EBADF):  # not a cgroup v2 directory (or an older kernel's clone_args)
            return None
        raise OSError(error, os.strerror(error))
    return pid
