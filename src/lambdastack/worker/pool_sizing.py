"""How many environments a zygote keeps built ahead of demand, from the recent cold-start rate.

A quiet server keeps `--prebuilt` of them (the floor). A burst of cold starts empties so small
a pool at once, and a replacement takes longer to build than a cold start from the pool takes
to serve, so the pool learns: its target is the largest number of cold starts seen within
`BURST_S` seconds (Lambda's scaling window) over the last `MEMORY_S` seconds, so that after a
burst of N the next burst of N finds N environments built. The target never exceeds
`CEILING`, nor what the memory budget could still host (each environment taken becomes a
function of at least `MIN_FUNCTION_MB`); once the bursts are older than `MEMORY_S`, the
environments beyond the floor are shut down.

Building an environment takes CPU and the kernel's mount locks from the cold starts and
invocations beside it, so a pool that still holds environments refills only once cold starts
have paused for `QUIET_S`; an empty pool refills at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

BURST_S = 10.0
MEMORY_S = 300.0
CEILING = 64
MIN_FUNCTION_MB = 128
QUIET_S = 0.05


class PoolSizer:
    """The target size of one zygote's pre-built pool, and what it served."""

    def __init__(self, floor: int, ceiling: int = CEILING, burst_s: float = BURST_S, memory_s: float = MEMORY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.floor = max(0, floor)
        self.ceiling = max(self.floor, ceiling)
        self.burst_s = burst_s
        self.memory_s = memory_s
        self._clock = clock
        self._demand: deque[float] = deque()  # when each recent cold start asked for an environment
        self.served = 0  # cold starts that took a pre-built environment
        self.missed = 0  # cold starts that found none and built one on demand

    def record(self, served: bool) -> None:
        """A cold start asked for a pre-built environment, and got one (`served`) or not."""
        if served:
            self.served += 1
        else:
            self.missed += 1
        self._demand.append(self._clock())
        while len(self._demand) > 4 * self.ceiling * max(1.0, self.memory_s / self.burst_s):
            self._demand.popleft()  # bounded even under a storm of cold starts
        self._forget()

    def wait_before_build(self, ready: int) -> float:
        """Seconds a refill should wait before building the next environment, with `ready` built."""
        if ready == 0 or not self._demand:
            return 0.0
        return max(0.0, self._demand[-1] + QUIET_S - self._clock())

    def peak(self) -> int:
        """The most cold starts within `burst_s` seconds, over the last `memory_s` seconds."""
        self._forget()
        times, best, first = self._demand, 0, 0
        for last in range(len(times)):
            while times[last] - times[first] >= self.burst_s:
                first += 1
            best = max(best, last - first + 1)
        return best

    def target(self, free_mb: int) -> int:
        """Environments to keep built, with `free_mb` of the memory budget left."""
        if self.floor == 0:
            return 0
        by_memory = max(0, free_mb) // MIN_FUNCTION_MB
        return max(self.floor, min(self.peak(), self.ceiling, by_memory))

    def status(self, ready: int, free_mb: int) -> dict[str, Any]:
        return {"ready": ready, "target": self.target(free_mb), "burst_peak": self.peak(),
                "served": self.served, "built_on_demand": self.missed}

    def _forget(self) -> None:
        horizon = self._clock() - self.memory_s
        while self._demand and self._demand[0] < horizon:
            self._demand.popleft()


class PrebuiltSizes:
    """A `PoolSizer` per zygote, all with the configured floor."""

    def __init__(self, floor: int) -> None:
        self.floor = floor
        self._sizers: dict[str, PoolSizer] = {}

    def __getitem__(self, zygote: str) -> PoolSizer:
        sizer = self._sizers.get(zygote)
        if sizer is None:
            sizer = self._sizers[zygote] = PoolSizer(self.floor)
        return sizer

    def status(self, ready: dict[str, int], free_mb: int) -> dict[str, Any]:
        return {name: self[name].status(ready.get(name, 0), free_mb) for name in sorted({*ready, *self._sizers})}
