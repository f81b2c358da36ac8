"""On cgroup v2, a new environment's init is born in its cgroup (clone3 with CLONE_INTO_CGROUP)
instead of being moved into it; elsewhere the zygote is told it cannot, and forks as before."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from lambdastack.sandbox.cgroups import V2Driver
from lambdastack.sandbox.clone_into import fork_into


def unified_hierarchy() -> Path | None:
    for mount in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        if (mount / "cgroup.controllers").exists() and os.access(mount, os.W_OK):
            return mount
    return None


def child_cgroup(target: str) -> tuple[int | None, str]:
    """Fork into `target`; the child reports its cgroup v2 membership (the `0::` line)."""
    r, w = os.pipe()
    pid = fork_into(target)
    if pid == 0:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        os.write(w, next(line for line in lines if line.startswith("0::")).encode())
        os._exit(0)
    os.close(w)
    said = os.read(r, 4096).decode() if pid is not None else ""
    os.close(r)
    if pid is not None:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    return pid, said


def test_the_child_is_born_in_its_cgroup() -> None:
    mount = unified_hierarchy()
    if mount is None:
        pytest.skip("no writable cgroup v2 hierarchy on this host")
    cgroup = mount / f"lambdastack-clone-test-{uuid.uuid4().hex[:8]}"
    cgroup.mkdir()
    try:
        pid, said = child_cgroup(str(cgroup))
        assert pid is not None and pid > 0
        assert said == f"0::/{cgroup.relative_to(mount)}"
        assert not (cgroup / "cgroup.procs").read_text().split()  # the child has gone with it
    finally:
        cgroup.rmdir()


def test_a_v1_directory_is_refused_without_forking() -> None:
    if V2Driver.find_mount() == Path("/sys/fs/cgroup") or not Path("/sys/fs/cgroup/memory").is_dir():
        pytest.skip("no cgroup v1 hierarchy on this host")
    assert fork_into("/sys/fs/cgroup/memory") is None
