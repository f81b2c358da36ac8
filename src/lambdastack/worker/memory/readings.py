"""What memory is really in use: the host's (MemAvailable, pressure stall information) and
the environments' (their cgroup subtree's working set).

Each reading is a few small file reads; callers cache them (see `admission.MemoryAdmission`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
PSI_FILE = Path("/proc/pressure/memory")


@dataclass
class Reading:
    environments_mb: float | None  # working set of all environments (None: no cgroups to read)
    host_available_mb: float  # MemAvailable
    stall_pct: float | None  # memory pressure "some avg10" (None: the kernel has no PSI)


def host_meminfo_mb(*keys: str) -> dict[str, float]:
    found: dict[str, float] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in keys:
                    found[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return found


def host_total_mb() -> int:
    total = host_meminfo_mb("MemTotal").get("MemTotal")
    if total:
        return int(total)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MB)


def stall_pct(path: Path = PSI_FILE) -> float | None:
    """Share of the last 10 s in which some task waited for memory (reclaim, refaults, swap)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("some "):
                    for field in line.split()[1:]:
                        name, _, value = field.partition("=")
                        if name == "avg10":
                            return float(value)
    except (OSError, ValueError):
        pass
    return None


def working_set_mb(files: tuple[Path, Path, str]) -> float | None:
    """A cgroup subtree's usage less its inactive file cache (what the kernel would reclaim first),
    as the kubelet counts a container's working set."""
    usage_file, stat_file, inactive_key = files
    try:
        usage = int(usage_file.read_text())
        inactive = 0
        with open(stat_file) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    inactive = int(value)
                    break
    except (OSError, ValueError):
        return None
    return max(0, usage - inactive) / MB


def read(cgroup_files: tuple[Path, Path, str] | None) -> Reading:
    available = host_meminfo_mb("MemAvailable").get("MemAvailable", float(host_total_mb()))
    return Reading(
        environments_mb=working_set_mb(cgroup_files) if cgroup_files else None,
        host_available_mb=available,
        stall_pct=stall_pct(),
    )
