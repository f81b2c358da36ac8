"""Which isolation this host gives execution environments, tried rather than guessed."""

from __future__ import annotations

import os
import sys

from lambdastack.sandbox import libc

LEVELS = ("namespaces", "userns", "process")


def _try_in_child(flags: int, user: bool) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            if user:
                uid, gid = os.getuid(), os.getgid()
                libc.unshare(libc.CLONE_NEWUSER)
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"0 {uid} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"0 {gid} 1")
            libc.unshare(flags)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def available(level: str) -> bool:
    if not sys.platform.startswith("linux"):
        return level == "process"
    flags = (libc.CLONE_NEWNS | libc.CLONE_NEWPID | libc.CLONE_NEWNET | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS
             | libc.CLONE_NEWCGROUP)
    if level == "namespaces":
        return os.geteuid() == 0 and _try_in_child(flags, user=False)
    if level == "userns":
        return _try_in_child(flags, user=True)
    return True


def choose(requested: str) -> str:
    """The strongest level available for `auto`, or `requested` if it works here."""
    if requested == "auto":
        for level in LEVELS:
            if available(level):
                return level
        return "process"
    if requested not in LEVELS:
        raise ValueError(f"unknown isolation level {requested!r}")
    if not available(requested):
        raise RuntimeError(f"isolation level {requested!r} is not available on this host")
    return requested
