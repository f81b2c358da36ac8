"""How many environments a function may add: the per-function scaling rate.

(How many the host's memory holds is decided in `lambdastack.worker.memory`.)

Scaling: as on Lambda, each function may add at most N new environments per 10 seconds
(default 1,000); beyond that, new environments are refused with
`FunctionInvocationRateLimitExceeded` until the bucket refills.
"""

from __future__ import annotations

import time

SCALING_WINDOW_S = 10.0


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
