"""The CPU limit of an environment: Lambda's share of a core, in slices short enough not to stall.

The kernel's CFS bandwidth control gives each environment `quota` of CPU time per `period`;
once used up, the environment waits for the next period. The files of a running
environment's cgroup must hold memory/1,769 of a core in periods of at most ~14 ms, with one
quota of burst, and a CPU-bound function must still be held to its share.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import Server, create_function, invoke_ok

CGROUPS = Path("/sys/fs/cgroup")

# memory MB: (period µs, quota µs), worked out by hand from Lambda's rule (a full core at 1,769 MB)
# and the kernel's least quota (1 ms): 128 MB gets 1 ms every 13.821 ms (7.24%), the rest 10 ms periods.
EXPECTED = {128: (13_821, 1_000), 1024: (10_000, 5_788), 1769: (10_000, 10_000), 3538: (10_000, 20_000)}

WAIT = "import os\n\ndef handler(event, context):\n    return os.environ['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']\n"

BUSY = '''
import time

def handler(event, context):
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - wall0 < event["seconds"]:
        pass
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)
'''

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.access(CGROUPS, os.W_OK), reason="environments get cgroups only as root"
)


def server_processes(root: int) -> set[str]:
    """The server and its descendants: one of them owns the server's cgroup subtree."""
    children: dict[str, list[str]] = {}
    for entry in Path("/proc").iterdir():
        try:
            children.setdefault(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1], []).append(entry.name)
        except (OSError, IndexError):
            continue
    found, stack = {str(root)}, [str(root)]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def environment_cgroups(server_pid: int, memory_mb: int) -> list[Path]:
    """The CPU cgroups (v1 or v2) of this server's running environments limited to `memory_mb`."""
    owners = server_processes(server_pid)
    found = []
    for cpu in [*CGROUPS.glob("cpu/lambdastack/*/*"), *CGROUPS.glob("lambdastack/*/*")]:
        if cpu.parent.name not in owners or not cpu.is_dir():
            continue
        memory = CGROUPS / "memory" / cpu.relative_to(CGROUPS / "cpu") if cpu.parts[4] == "cpu" else cpu
        try:
            limit = (memory / "memory.limit_in_bytes" if cpu.parts[4] == "cpu" else memory / "memory.max").read_text()
        except OSError:
            continue
        if limit.strip() == str(memory_mb << 20) and cpu_limit(cpu)[1] > 0:  # quota set: not initializing
            found.append(cpu)
    return found


def cpu_limit(cgroup: Path) -> tuple[int, int, int | None]:
    """(period µs, quota µs (-1: none), burst µs or None where the kernel has no burst) as the kernel holds them."""
    if (cgroup / "cpu.max").exists():  # v2
        quota, period = (cgroup / "cpu.max").read_text().replace("max", "-1").split()
        burst = cgroup / "cpu.max.burst"
    else:
        period, quota = (cgroup / "cpu.cfs_period_us").read_text(), (cgroup / "cpu.cfs_quota_us").read_text()
        burst = cgroup / "cpu.cfs_burst_us"
    return int(period), int(quota), int(burst.read_text()) if burst.exists() else None


@pytest.mark.parametrize("memory_mb", sorted(EXPECTED))
def test_a_warm_environment_holds_its_share_in_short_periods(server: Server, plain_lam: Any, memory_mb: int) -> None:
    name = create_function(plain_lam, WAIT, MemorySize=memory_mb)
    assert invoke_ok(plain_lam, name) == str(memory_mb)
    cgroups = environment_cgroups(server.pid, memory_mb)
    assert cgroups, f"no warm environment of {memory_mb} MB"
    for cgroup in cgroups:
        period, quota, burst = cpu_limit(cgroup)
        assert (period, quota) == EXPECTED[memory_mb]
        assert quota / period == pytest.approx(memory_mb / 1769, rel=0.002)
        assert burst in (quota, None), "an idle environment may save one period's quota, no more"


def test_a_cpu_bound_128_mb_function_is_still_held_to_its_share(plain_lam: Any) -> None:
    """Over a second, 1 ms every 13.8 ms plus at most 2 ms of saved quota: about 7.4% of a core.

    Only the upper bound is asserted: a loaded host may give less, never more.
    """
    name = create_function(plain_lam, BUSY, MemorySize=128, Timeout=30)
    invoke_ok(plain_lam, name, {"seconds": 0.01})
    share = invoke_ok(plain_lam, name, {"seconds": 1.0})
    assert 0 < share < 0.12, f"128 MB got {share:.3f} of a core"
