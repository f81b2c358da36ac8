"""Whether an invocation is traced, as Lambda decides with its function's `TracingConfig`.

PassThrough traces only what an upstream header marks `Sampled=1`. Active respects an upstream
decision and otherwise samples with X-Ray's default rule: the first request of each second
and a fixed rate (5 %) of the rest. `OTEL_TRACES_SAMPLER_ARG` (a ratio, 0 to 1) changes that rate.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping

DEFAULT_RATE = 0.05


class Sampler:
    def __init__(self, rate: float = DEFAULT_RATE, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._second = -1

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Sampler:
        try:
            rate = float(environ.get("OTEL_TRACES_SAMPLER_ARG", DEFAULT_RATE))
        except ValueError:
            rate = DEFAULT_RATE
        return cls(min(1.0, max(0.0, rate)))

    def decide(self, mode: str, upstream: bool | None) -> bool:
        if upstream is not None:
            return upstream
        if mode != "Active":
            return False
        second = int(self.clock())
        if second != self._second:  # the reservoir: one a second
            self._second = second
            return True
        return random.random() < self.rate


def tracing_mode(config: Mapping[str, object]) -> str:
    tracing = config.get("TracingConfig")
    return str(tracing.get("Mode") or "PassThrough") if isinstance(tracing, dict) else "PassThrough"
