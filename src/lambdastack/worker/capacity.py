"""How many environments may exist: the per-function scaling rate and the host's memory budget.

Scaling: as on Lambda, each function may add at most N new environments per 10 seconds
(default 1,000); beyond that, new environments are refused with
`FunctionInvocationRateLimitExceeded` until the bucket refills.

Memory: the sum of live environments' MemorySize stays within a budget (default: the
host's memory minus a reserve), so lambdastack's own environments never push the host
into OOM. Each environment's cgroup enforces its MemorySize; the budget bounds their sum.
"""

from __future__ import annotations

import os
import time

SCALING_WINDOW_S = 10.0


def host_memory_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024))


def default_memory_budget_mb() -> int:
    """The host's memory minus a reserve for the platform and the host (10%, at least 1 GiB)."""
    total = host_memory_mb()
    return max(256, total - max(1024, total // 10))


class ScalingLimiter:
    """A token bucket per function: `per_window` new environments per 10 seconds."""

    def __init__(self, per_window: int) -> None:
        self.per_window = per_window
        self.rate = per_window / SCALING_WINDOW_S
        self._buckets: dict[tuple[str, str, str], tuple[float, float]] = {}  # tokens, as of when

    def take(self, function: tuple[str, str, str]) -> bool:
        now = time.monotonic()
        tokens, then = self._buckets.get(function, (float(self.per_window), now))
        tokens = min(float(self.per_window), tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[function] = (tokens, now)
            return False
        self._buckets[function] = (tokens - 1.0, now)
        return True


class MemoryBudget:
    """MemorySize committed to live environments, against the budget."""

    def __init__(self, budget_mb: int) -> None:
        self.budget_mb = budget_mb
        self.committed_mb = 0

    def fits(self, memory_mb: int) -> bool:
        return self.committed_mb + memory_mb <= self.budget_mb

    def commit(self, memory_mb: int) -> None:
        self.committed_mb += memory_mb

    def release(self, memory_mb: int) -> None:
        self.committed_mb = max(0, self.committed_mb - memory_mb)
