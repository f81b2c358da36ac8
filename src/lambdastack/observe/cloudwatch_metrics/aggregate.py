"""The statistics of a set of values: count, sum, minimum, maximum and a histogram.

Values are binned on a logarithmic scale with 2% steps (as the deployments' metrics are),
so a percentile is exact to within 2%; count, sum, minimum and maximum are exact.
"""

from __future__ import annotations

import math
import re

_STEP = math.log(1.02)
_FLOOR = 0.001
ZERO_BIN = -(1 << 30)  # values <= 0 (Errors=0 of a success)

PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d{1,10})?|100)")


def bin_of(value: float) -> int:
    if value <= 0:
        return ZERO_BIN
    return round(math.log(max(value, _FLOOR)) / _STEP)


def value_of(bin_: int) -> float:
    return 0.0 if bin_ == ZERO_BIN else math.exp(bin_ * _STEP)


class Aggregate:
    """Values of one series in one period."""

    __slots__ = ("count", "histogram", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.count = 0.0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.histogram: dict[int, float] = {}

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        if value < self.minimum:
            self.minimum = value
        if value > self.maximum:
            self.maximum = value
        b = bin_of(value)
        self.histogram[b] = self.histogram.get(b, 0.0) + count

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        for b, n in other.histogram.items():
            self.histogram[b] = self.histogram.get(b, 0.0) + n

    def percentile(self, fraction: float) -> float | None:
        if self.count <= 0:
            return None
        rank = max(1e-9, fraction * self.count)
        seen = 0.0
        for b in sorted(self.histogram):
            seen += self.histogram[b]
            if seen >= rank - 1e-9:
                return min(max(value_of(b), self.minimum), self.maximum)
        return self.maximum

    def statistic(self, name: str) -> float | None:
        """One of CloudWatch's statistics: SampleCount, Sum, Average, Minimum, Maximum or pNN."""
        if name == "SampleCount":
            return self.count
        if self.count <= 0:
            return None
        if name == "Sum":
            return self.total
        if name == "Average":
            return self.total / self.count
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        found = PERCENTILE.fullmatch(name)
        if found is not None:
            return self.percentile(float(found.group(1)) / 100.0)
        return None

    def to_row(self) -> tuple[float, float, float, float, str]:
        pairs = ",".join(f"{b}:{n:g}" for b, n in self.histogram.items())
        return self.count, self.total, self.minimum, self.maximum, pairs

    @classmethod
    def from_row(cls, count: float, total: float, minimum: float, maximum: float, pairs: str) -> Aggregate:
        agg = cls()
        agg.count, agg.total, agg.minimum, agg.maximum = count, total, minimum, maximum
        for pair in filter(None, pairs.split(",")):
            b, _, n = pair.partition(":")
            agg.histogram[int(b)] = float(n)
        return agg
