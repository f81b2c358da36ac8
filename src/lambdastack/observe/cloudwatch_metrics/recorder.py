"""What the invoke path calls: one append of a tuple per fact, nothing else.

The facts wait in a deque (appends and pops are thread-safe) until the store drains them,
every few seconds or before it answers a query: the invoke path never aggregates, locks
or writes.
"""

from __future__ import annotations

import collections
import time
from typing import Any

# Kinds of facts.
INVOCATION = 0  # duration_ms, failed, concurrency
THROTTLE = 1
ASYNC_RECEIVED = 2
ASYNC_AGE = 3  # age_ms
ASYNC_DROPPED = 4
DEAD_LETTER_ERROR = 5
DESTINATION_FAILURE = 6
ITERATOR_AGE = 7  # age_ms
CUSTOM = 8  # namespace, name, dimensions, value, unit

# Beyond this many waiting facts (a store that cannot keep up), the oldest are dropped.
MAX_PENDING = 1_000_000


class MetricsRecorder:
    def __init__(self) -> None:
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=MAX_PENDING)

    def invocation(self, account: str, region: str, function: str, resource: str | None, version: str,
                   duration_ms: float, failed: bool, concurrency: int, cold_start: bool) -> None:
        """A finished invocation; `resource` is `function:qualifier` when the caller named one."""
        self.pending.append((INVOCATION, time.time(), account, region, function, resource, version,
                             duration_ms, failed, concurrency, cold_start))

    def throttle(self, account: str, region: str, function: str, resource: str | None, version: str) -> None:
        self.pending.append((THROTTLE, time.time(), account, region, function, resource, version))

    def event(self, kind: int, account: str, region: str, function: str, resource: str | None,
              value: float = 1.0) -> None:
        """An async or stream fact of a function: ASYNC_RECEIVED, ASYNC_AGE (ms), ITERATOR_AGE (ms), ..."""
        self.pending.append((kind, time.time(), account, region, function, resource, value))

    def custom(self, account: str, region: str, namespace: str, name: str,
               dimensions: tuple[tuple[str, str], ...], values: list[float], unit: str, at: float) -> None:
        """Values of a custom metric (embedded metric format)."""
        self.pending.append((CUSTOM, at, account, region, namespace, name, dimensions, values, unit))
