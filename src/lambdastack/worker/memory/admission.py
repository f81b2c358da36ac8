"""Admission by real memory: how many environments the host holds.

`MemorySize` stays each environment's limit (its memory cgroup enforces it), but it is not
what an environment uses: an idle Python environment holds a few MB. So, as Lambda's own
hosts do, environments are admitted by what they really use:

- each live environment is charged its function's *learned* use, the highest peak (cgroup
  `max_usage_in_bytes` / `memory.peak`) any environment of that function version has
  reached, plus headroom (x1.25 + 8 MB), never more than its `MemorySize`; a function not
  seen yet is charged its `MemorySize` until its first invocation ends;
- the environments' real working set (their cgroup subtree's usage less inactive file
  cache) and the host's `MemAvailable` are read as well (cached for 100 ms), and the larger
  of charged and real use counts;
- a new environment is admitted while that use plus its charge stays within the capacity
  (the memory considered, `--memory-limit` or the host's, less `--memory-reserve`) and the
  host keeps the reserve available. Otherwise the least recently used idle environments are
  evicted; with none idle, the invocation waits briefly for one of its function's own
  environments to come free, then is throttled (`TooManyRequestsException`).
- a watcher evicts idle environments (least recently used first) whenever real use goes
  over the capacity or the host's reserve, and one per tick while the kernel reports memory
  pressure stalls (PSI "some avg10" >= 10%), before the host swaps or OOMs.

`--memory-budget MB` restores the strict rule: environments are charged their full
`MemorySize` and their sum stays within MB (no oversubscription).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambdastack.worker.memory import readings

log = logging.getLogger(__name__)

DEFAULT_RESERVE_PCT = 10.0
HOST_RESERVE_FLOOR_MB = 1024  # without --memory-limit: at least this much stays for the host
HEADROOM = 1.25
HEADROOM_MB = 8
READING_TTL_S = 0.1
STALL_PCT = 10.0
WATCH_INTERVAL_S = 0.5


def parse_reserve(text: str) -> tuple[float | None, int | None]:
    """"15%" -> (15.0, None); "2048" -> (None, 2048). Raises ValueError on anything else."""
    text = text.strip()
    if text.endswith("%"):
        pct = float(text[:-1])
        if not 0 <= pct < 100:
            raise ValueError(f"a reserve percentage must be within 0-99: {text}")
        return pct, None
    mb = int(text)
    if mb < 0:
        raise ValueError(f"a reserve must not be negative: {text}")
    return None, mb


@dataclass(frozen=True)
class MemorySettings:
    limit_mb: int | None = None  # memory considered (None: the host's MemTotal)
    reserve: str | None = None  # "MB" or "N%" of the memory considered (None: 10%, >= 1 GiB of a whole host)
    declared_budget_mb: int | None = None  # charge full MemorySize within this sum instead


class MemoryAdmission:
    def __init__(self, settings: MemorySettings, cgroup_files: tuple[Path, Path, str] | None) -> None:
        host = readings.host_total_mb()
        self.considered_mb = min(host, settings.limit_mb) if settings.limit_mb else host
        pct, mb = parse_reserve(settings.reserve) if settings.reserve else (DEFAULT_RESERVE_PCT, None)
        if mb is None:
            mb = int(self.considered_mb * (pct or 0) / 100)
            if settings.reserve is None and settings.limit_mb is None:
                mb = max(mb, HOST_RESERVE_FLOOR_MB)
        self.reserve_mb = mb
        self.declared = settings.declared_budget_mb is not None
        self.capacity_mb = settings.declared_budget_mb or max(128, self.considered_mb - self.reserve_mb)
        self.committed_mb = 0
        self._cgroup_files = cgroup_files
        self._peaks: dict[object, int] = {}  # function version -> highest peak (MB) seen
        self._reading: readings.Reading | None = None
        self._read_at = 0.0
        self._released_since_read = 0

    # ------------------------------------------------------------------ charges

    def expected_mb(self, key: object, declared_mb: int) -> int:
        """What a new environment of this function version is charged."""
        peak = None if self.declared else self._peaks.get(key)
        if peak is None:
            return declared_mb
        return min(declared_mb, math.ceil(peak * HEADROOM) + HEADROOM_MB)

    def learned(self, key: object, declared_mb: int, charged_mb: int, peak_mb: int) -> int:
        """An environment of `key`, charged `charged_mb`, reached `peak_mb`: its new charge."""
        if self.declared or not charged_mb or peak_mb <= 0:
            return charged_mb
        if peak_mb > self._peaks.get(key, 0):
            self._peaks[key] = peak_mb
        charge = self.expected_mb(key, declared_mb)
        self.committed_mb += charge - charged_mb
        return charge

    def commit(self, mb: int) -> None:
        self.committed_mb += mb

    def release(self, mb: int) -> None:
        """An environment charged `mb` is gone (or its start failed)."""
        self.committed_mb = max(0, self.committed_mb - mb)
        self._released_since_read += mb

    # ------------------------------------------------------------------ real use

    def _read(self) -> readings.Reading:
        now = time.monotonic()
        if self._reading is None or now - self._read_at >= READING_TTL_S:
            self._reading = readings.read(self._cgroup_files)
            self._read_at = now
            self._released_since_read = 0
        return self._reading

    def used_mb(self) -> float:
        """The larger of what environments are charged and what they really use (less what
        went since that was read: its pages are on their way back)."""
        real = self._read().environments_mb
        if real is None:
            return float(self.committed_mb)
        return max(float(self.committed_mb), real - self._released_since_read)

    def host_headroom_mb(self) -> float:
        """MemAvailable beyond the reserve."""
        return self._read().host_available_mb + self._released_since_read - self.reserve_mb

    def fits(self, mb: int) -> bool:
        return self.used_mb() + mb <= self.capacity_mb and mb <= self.host_headroom_mb()

    def over(self) -> bool:
        """Whether environments already use more than the host can give them."""
        return self.used_mb() > self.capacity_mb or self.host_headroom_mb() < 0

    def stalled(self) -> bool:
        stall = self._read().stall_pct
        return stall is not None and stall >= STALL_PCT

    def describe(self) -> str:
        return (f"memory admission: {self.capacity_mb} MB for environments "
                f"({'MemorySize charged in full' if self.declared else 'charged by their real use'}; "
                f"{self.considered_mb} MB considered, {self.reserve_mb} MB reserved)")

    async def watch(self, evict_lru_idle: Callable[[], bool]) -> None:
        """Evict idle environments before the host runs out: whenever real use is over the
        capacity or the host's reserve, and one per tick under memory pressure stalls."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            self._read_at = 0.0  # a fresh reading each tick
            try:
                evicted = 0
                while self.over() and evict_lru_idle():
                    evicted += 1
                if not evicted and self.stalled() and evict_lru_idle():
                    evicted = 1
                if evicted:
                    log.info("memory pressure: evicted %d idle environment(s)", evicted)
            except Exception:  # the watcher must outlive a bad reading
                log.exception("memory watcher")
