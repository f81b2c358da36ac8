"""Time as the asynchronous path sees it: the wall clock, with every async delay scaled.

Lambda's retry waits are minutes and an event may wait six hours; `scale` shrinks all of
them alike (retry delays, backoff, maximum event age, delivery retries), so a test or a
demonstration can see hours of behaviour in seconds. `scale=1` is Lambda's own timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AsyncClock:
    def __init__(self, scale: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if scale <= 0:
            raise ValueError("the async time scale must be positive")
        self.scale = scale
        self._wall = wall

    def now(self) -> float:
        return self._wall()

    def after(self, seconds: float, now: float | None = None) -> float:
        """The wall-clock time `seconds` of async time from `now`."""
        return (self.now() if now is None else now) + seconds * self.scale

    def age(self, since: float, now: float | None = None) -> float:
        """Async seconds elapsed since the wall-clock time `since`."""
        return ((self.now() if now is None else now) - since) / self.scale

    def real(self, seconds: float) -> float:
        """Wall-clock seconds that `seconds` of async time last."""
        return seconds * self.scale
