"""Shared file systems for environments: each a host directory, idmapped so that the
function's user reads and writes it as the access point's POSIX user.

An idmapped mount needs a user namespace that states the mapping (on-disk owner ->
function's user); one is made per distinct owner, the first time it is needed, and kept
for the server's life. The mount itself lives in the environment's mount namespace and
goes with it.
"""

from __future__ import annotations

import os
import threading

from lambdastack.sandbox import jail
from lambdastack.worker.spec import SharedFileSystem


class SharedMountsUnavailable(Exception):
    """This server cannot give environments shared file systems (its isolation has no mounts)."""


class SharedMounts:
    def __init__(self, isolation: str) -> None:
        self.isolation = isolation
        self._namespaces: dict[tuple[int, int], int] = {}
        self._lock = threading.Lock()

    def tree(self, shared: SharedFileSystem) -> int:
        """A detached mount of the shared directory, to attach at its target in an environment."""
        if self.isolation != "namespaces" or os.geteuid() != 0:
            raise SharedMountsUnavailable(
                f"file systems ({shared.target}) need namespace isolation with root (this server runs with "
                f"--isolation {self.isolation})"
            )
        return jail.shared_tree(str(shared.host), self._userns(shared.uid, shared.gid))

    def _userns(self, uid: int, gid: int) -> int:
        with self._lock:
            fd = self._namespaces.get((uid, gid))
            if fd is None:
                fd = self._namespaces[(uid, gid)] = jail.idmapping((uid, jail.FUNCTION_UID), (gid, jail.FUNCTION_GID))
            return fd

    def close(self) -> None:
        with self._lock:
            for fd in self._namespaces.values():
                os.close(fd)
            self._namespaces.clear()
