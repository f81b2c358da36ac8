"""Is the new version doing worse than the old one? Error rate and p99 duration, compared.

Both versions serve the alias's traffic at the same time during a deployment, so they are
measured over the same window and against the same load. The new version is judged only
once it served `MinInvocations`; its p99 only once both versions served `LATENCY_SAMPLES`
(of fewer invocations the p99 is just the slowest one, and one slow call is not a trend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lambdastack import errors
from lambdastack.observe.metrics import Snapshot

LATENCY_SAMPLES = 100


@dataclass(frozen=True)
class HealthPolicy:
    # The new version's error rate may exceed the old one's by at most this (0.05: 5 points).
    max_error_rate_increase: float = 0.05
    # The new version's p99 duration may be at most this multiple of the old one's ...
    max_p99_ratio: float = 2.0
    # ... plus this, so that durations of a few milliseconds do not trip it on noise.
    p99_slack_ms: float = 10.0
    min_invocations: int = 10

    _MEMBERS = {
        "MaxErrorRateIncrease": "max_error_rate_increase",
        "MaxP99Ratio": "max_p99_ratio",
        "P99SlackMs": "p99_slack_ms",
        "MinInvocations": "min_invocations",
    }

    @classmethod
    def from_request(cls, document: Any) -> HealthPolicy:
        if document is None:
            return cls()
        if not isinstance(document, dict):
            raise errors.InvalidParameterValue("Health must be an object.")
        unknown = sorted(set(document) - set(cls._MEMBERS))
        if unknown:
            raise errors.InvalidParameterValue(f"Unknown Health member(s): {', '.join(unknown)}.")
        values: dict[str, Any] = {}
        for member, field in cls._MEMBERS.items():
            if member not in document:
                continue
            value = document[member]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise errors.InvalidParameterValue(f"Health.{member} must be a number of at least 0.")
            values[field] = int(value) if field == "min_invocations" else float(value)
        if values.get("max_p99_ratio", 1.0) < 1.0:
            raise errors.InvalidParameterValue("Health.MaxP99Ratio must be at least 1.")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {member: getattr(self, field) for member, field in self._MEMBERS.items()}


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    judged: bool  # False: not enough invocations of the new version yet
    reason: str = ""


def judge(policy: HealthPolicy, new: Snapshot, old: Snapshot, new_version: str, old_version: str) -> Verdict:
    if new.invocations < policy.min_invocations:
        return Verdict(True, False, f"version {new_version} served {new.invocations} of the "
                                    f"{policy.min_invocations} invocations needed to judge it")
    limit = old.error_rate + policy.max_error_rate_increase
    if new.error_rate > limit:
        return Verdict(
            False,
            True,
            f"error rate of version {new_version} is {new.error_rate:.1%} ({new.errors} of {new.invocations}) "
            f"against {old.error_rate:.1%} on version {old_version}; at most {limit:.1%} is allowed",
        )
    enough = max(policy.min_invocations, LATENCY_SAMPLES)
    if new.invocations >= enough and old.invocations >= enough and new.p99_ms is not None and old.p99_ms is not None:
        ceiling = old.p99_ms * policy.max_p99_ratio + policy.p99_slack_ms
        if new.p99_ms > ceiling:
            return Verdict(
                False,
                True,
                f"p99 duration of version {new_version} is {new.p99_ms:.1f} ms against {old.p99_ms:.1f} ms on "
                f"version {old_version}; at most {ceiling:.1f} ms is allowed",
            )
    return Verdict(True, True)
