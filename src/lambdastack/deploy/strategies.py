"""How traffic moves to the new version: all at once, a canary, or in equal linear steps.

A strategy becomes a list of steps: the share of the alias's traffic the new version gets,
and how long that share is held (and watched) before the next step. The last step always
gives the new version everything. Durations are in seconds, so that a canary of "10% for
5 minutes" can run in seconds where that makes sense (tests, demos).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lambdastack import errors

ALL_AT_ONCE = "AllAtOnce"
CANARY = "Canary"
LINEAR = "Linear"
KINDS = (ALL_AT_ONCE, CANARY, LINEAR)
MAX_INTERVAL_S = 24 * 3600


@dataclass(frozen=True)
class Step:
    weight: float  # share of the traffic on the new version, 0 < weight <= 1
    hold_s: float  # how long it is held and watched before the next step


@dataclass(frozen=True)
class Strategy:
    kind: str
    percent: float = 100.0
    interval_s: float = 0.0

    @classmethod
    def from_request(cls, document: Any) -> Strategy:
        """Parse `{"Type": "Canary", "Percent": 10, "IntervalSeconds": 300}` and friends."""
        if not isinstance(document, dict):
            raise errors.InvalidParameterValue("Strategy must be an object with a Type.")
        kind = document.get("Type")
        if kind not in KINDS:
            raise errors.InvalidParameterValue(f"Strategy.Type must be one of {', '.join(KINDS)}; got {kind!r}.")
        if kind == ALL_AT_ONCE:
            return cls(ALL_AT_ONCE)
        percent = _number(document, "Percent")
        interval = _number(document, "IntervalSeconds")
        if not 0 < percent < 100:
            raise errors.InvalidParameterValue("Strategy.Percent must be greater than 0 and less than 100.")
        if not 0 < interval <= MAX_INTERVAL_S:
            raise errors.InvalidParameterValue(
                f"Strategy.IntervalSeconds must be greater than 0 and at most {MAX_INTERVAL_S}."
            )
        return cls(kind, percent, interval)

    def steps(self) -> list[Step]:
        if self.kind == CANARY:
            return [Step(self.percent / 100, self.interval_s), Step(1.0, 0.0)]
        if self.kind == LINEAR:
            count = math.ceil(100 / self.percent)
            shares = [min(1.0, round(i * self.percent / 100, 6)) for i in range(1, count)]
            return [*(Step(share, self.interval_s) for share in shares if share < 1.0), Step(1.0, 0.0)]
        return [Step(1.0, 0.0)]

    def describe(self) -> str:
        if self.kind == CANARY:
            return f"canary {self.percent:g}% for {_duration(self.interval_s)}"
        if self.kind == LINEAR:
            return f"linear {self.percent:g}% every {_duration(self.interval_s)}"
        return "all at once"

    def to_json(self) -> dict[str, Any]:
        if self.kind == ALL_AT_ONCE:
            return {"Type": ALL_AT_ONCE}
        return {"Type": self.kind, "Percent": self.percent, "IntervalSeconds": self.interval_s}


def _number(document: dict[str, Any], member: str) -> float:
    value = document.get(member)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise errors.InvalidParameterValue(f"Strategy.{member} must be a number.")
    return float(value)


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute" + ("s" if minutes != 1 else "")
    return f"{seconds:g} second" + ("s" if seconds != 1 else "")
