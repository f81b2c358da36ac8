"""Memory of processes as the kernel accounts it: PSS and RSS from /proc, grouped by cgroup or process tree.

PSS (proportional set size) splits each shared page among the processes that map it, so
the PSS of many environments forked from one zygote adds up to what they really cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_MOUNT = Path("/sys/fs/cgroup")
CGROUP_ROOT_NAME = "lambdastack"


@dataclass(frozen=True)
class Usage:
    """PSS and RSS in kB of a set of processes (those gone by the time they were read are skipped)."""

    pss_kb: int = 0
    rss_kb: int = 0
    processes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.pss_kb + other.pss_kb, self.rss_kb + other.rss_kb, self.processes + other.processes)

    @property
    def pss_mb(self) -> float:
        return self.pss_kb / 1024

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024


def usage_of(pid: int) -> Usage:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return Usage()
    fields = {}
    for line in text.splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0]) if rest.split() else 0
    return Usage(fields.get("Pss", 0), fields.get("Rss", 0), 1)


def usage_of_all(pids: list[int]) -> Usage:
    total = Usage()
    for pid in pids:
        total += usage_of(pid)
    return total


def parents() -> dict[int, int]:
    """pid -> parent pid of every process on the host."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        out[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(root: int) -> list[int]:
    """Every process below `root` in the process tree (not `root` itself)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def environment_cgroups(server_pid: int) -> list[Path]:
    """The per-environment cgroups a lambdastack server made (`lambdastack/<pid>/<env>/`, v1 or v2).

    The subtree is named after the process that owns the cgroup driver: the server or one of
    its descendants.
    """
    owners = {str(server_pid), *(str(p) for p in descendants(server_pid))}
    found: list[Path] = []
    for root in (CGROUP_MOUNT / "memory" / CGROUP_ROOT_NAME, CGROUP_MOUNT / CGROUP_ROOT_NAME,
                 CGROUP_MOUNT / "unified" / CGROUP_ROOT_NAME):
        if not root.is_dir():
            continue
        for owner in root.iterdir():
            if owner.name in owners and owner.is_dir():
                found.extend(d for d in owner.iterdir() if d.is_dir())
        if found:
            break
    return found


def cgroup_pids(cgroup: Path) -> list[int]:
    try:
        return [int(line) for line in (cgroup / "cgroup.procs").read_text().split()]
    except (FileNotFoundError, OSError):
        return []


def cgroup_charged_kb(cgroup: Path) -> int:
    """What the kernel charges the cgroup (v1 memory.usage_in_bytes, v2 memory.current), page cache included."""
    for name in ("memory.usage_in_bytes", "memory.current"):
        try:
            return int((cgroup / name).read_text()) // 1024
        except (FileNotFoundError, ValueError, OSError):
            continue
    return 0


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")
