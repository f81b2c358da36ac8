"""A server leaves nothing behind: not when it is stopped, and not for long when it crashes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import Server, create_function, invoke_ok, wait_for

CGROUP_ROOT = Path("/sys/fs/cgroup")

# The function leaves a child process running in its environment.
LINGER = '''
import os, subprocess, sys

def handler(event, context):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    return child.pid
'''

# What the server logs when its shutdown trips over an environment cgroup being removed.

Process = tuple[int, str]  # pid and start time: a pid alone may be reused


def cgroup_dirs(server_pid: int) -> list[Path]:
    """This server's cgroup subtrees, in any hierarchy (v1 controllers or v2)."""
    patterns = [f"*/lambdastack/{server_pid}", f"lambdastack/{server_pid}"]
    return sorted(p for pattern in patterns for p in CGROUP_ROOT.glob(pattern) if p.is_dir())


def start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def descendants(root: int) -> set[Process]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[Process] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            started = start_time(child)
            if started is not None:
                found.add((child, started))
                stack.append(child)
    return found


def environment_processes(server_pid: int) -> set[Process]:
    """Every process in an environment cgroup of this server."""
    found: set[Process] = set()
    for base in cgroup_dirs(server_pid):
        for procs in base.glob("*/cgroup.procs"):
            for line in procs.read_text().split():
                started = start_time(int(line))
                if started is not None:
                    found.add((int(line), started))
    return found


def alive(processes: set[Process]) -> set[Process]:
    return {(pid, started) for pid, started in processes if start_time(pid) == started}


@pytest.fixture(autouse=True)
def needs_cgroups() -> None:
    if os.geteuid() != 0 or not os.access(CGROUP_ROOT, os.W_OK):
        pytest.skip("environment cgroups need root")


def busy_server(private_server: Any) -> tuple[Server, set[Process]]:
    """A server with two warm environments, one of which left a process running."""
    server: Server = private_server()
    lam = server.client()
    invoke_ok(lam, create_function(lam, LINGER))
    invoke_ok(lam, create_function(lam))
    processes = descendants(server.pid) | environment_processes(server.pid)
    assert cgroup_dirs(server.pid), "the server made no environment cgroups"
    assert len(environment_processes(server.pid)) >= 5  # 2 x (init + runtime) + the lingering child
    return server, processes


def test_stopped_server_leaves_no_processes_or_cgroups(private_server: Any) -> None:
    server, processes = busy_server(private_server)
    assert server.stop() == 0
    assert wait_for(lambda: not alive(processes), timeout=5), alive(processes)
    assert not cgroup_dirs(server.pid)


def test_crashed_servers_leftovers_are_swept_by_the_next(private_server: Any) -> None:
    crashed, processes = busy_server(private_server)
    crashed.kill()
    leftovers = cgroup_dirs(crashed.pid)
    assert leftovers, "a killed server cannot clean up after itself"
    private_server()  # a new server, on another data dir
    assert wait_for(lambda: not cgroup_dirs(crashed.pid), timeout=5), cgroup_dirs(crashed.pid)
    assert wait_for(lambda: not alive(processes), timeout=5), alive(processes)
