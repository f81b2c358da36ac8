"""Invocation metrics per function version: counts, errors and duration percentiles over a
sliding window.

Every invocation is recorded with one call that costs the same whatever the traffic: each
version has a ring of one-second slots covering the window, and an invocation adds to the
slot of the current second (its count, its errors, and one bin of its duration histogram).
A query merges the slots of the seconds it asks about. Durations are binned on a
logarithmic scale with 2% steps, so a percentile is exact to within 2%.

Invocations are recorded, and snapshots read, on the event loop; `forget` may come from
any thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VersionKey = tuple[str, str, str, str]  # account, region, function name, version

_STEP = math.log(1.02)
_FLOOR_MS = 0.001


def _bin(duration_ms: float) -> int:
    return round(math.log(max(duration_ms, _FLOOR_MS)) / _STEP)


def _value(bin_: int) -> float:
    return math.exp(bin_ * _STEP)


@dataclass(frozen=True)
class Snapshot:
    """What one version did over a span of time."""

    invocations: int
    errors: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    seconds: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.invocations if self.invocations else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "Invocations": self.invocations,
            "Errors": self.errors,
            "ErrorRate": round(self.error_rate, 4),
            "P50Ms": _rounded(self.p50_ms),
            "P90Ms": _rounded(self.p90_ms),
            "P99Ms": _rounded(self.p99_ms),
            "WindowSeconds": round(self.seconds, 1),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class _Slot:
    """One second of one version."""

    __slots__ = ("count", "errors", "histogram", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        self.count = 0
        self.errors = 0
        self.histogram: dict[int, int] = {}


class _Ring:
    """One version's last `size` seconds: slots are made on first use, and reused."""

    __slots__ = ("slots",)

    def __init__(self, size: int) -> None:
        self.slots: list[_Slot | None] = [None] * size

    def add(self, second: int, duration_ms: float, failed: bool) -> None:
        index = second % len(self.slots)
        slot = self.slots[index]
        if slot is None:
            slot = self.slots[index] = _Slot(second)
        elif slot.second != second:
            slot.second, slot.count, slot.errors = second, 0, 0
            slot.histogram.clear()
        slot.count += 1
        if failed:
            slot.errors += 1
        b = _bin(duration_ms)
        slot.histogram[b] = slot.histogram.get(b, 0) + 1

    def merged(self, first: int, last: int) -> tuple[int, int, dict[int, int]]:
        count = errors = 0
        histogram: dict[int, int] = {}
        for slot in self.slots:
            if slot is not None and first <= slot.second <= last:
                count += slot.count
                errors += slot.errors
                for b, n in slot.histogram.items():
                    histogram[b] = histogram.get(b, 0) + n
        return count, errors, histogram


def _percentile(histogram: dict[int, int], total: int, fraction: float) -> float | None:
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for b in sorted(histogram):
        seen += histogram[b]
        if seen >= rank:
            return _value(b)
    return _value(max(histogram))


class Metrics:
    def __init__(self, window_s: int = 900, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._rings: dict[VersionKey, _Ring] = {}

    def record(self, key: VersionKey, duration_ms: float, failed: bool) -> None:
        """One finished invocation of a version (`failed`: a function error or a platform fault)."""
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(self.window_s)
        ring.add(int(self.clock()), duration_ms, failed)

    def snapshot(self, key: VersionKey, seconds: float) -> Snapshot:
        """The version's last `seconds` (at most the window), the current second included."""
        seconds = min(max(seconds, 1.0), float(self.window_s))
        now = int(self.clock())
        ring = self._rings.get(key)
        if ring is None:
            return Snapshot(0, 0, None, None, None, seconds)
        count, errors, histogram = ring.merged(now - math.ceil(seconds) + 1, now)
        return Snapshot(
            invocations=count,
            errors=errors,
            p50_ms=_percentile(histogram, count, 0.50),
            p90_ms=_percentile(histogram, count, 0.90),
            p99_ms=_percentile(histogram, count, 0.99),
            seconds=seconds,
        )

    def forget(self, account: str, region: str, function_name: str) -> None:
        """Drop every version of a function (it was deleted). Safe from any thread."""
        for key in [k for k in list(self._rings) if k[:3] == (account, region, function_name)]:
            self._rings.pop(key, None)
