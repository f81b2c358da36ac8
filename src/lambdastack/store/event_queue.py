"""The durable queue of asynchronous invocations: what the invoke side may ask of it.

`SqliteEventQueue` (store/queue.py) fills this interface in the embedded deployment;
a NATS JetStream work-queue stream fills it in the cluster. Nothing above the store knows
which one is in use.

The contract:

- `put` returns only once the event is durable, so a 202 is never sent for an event a
  crash could lose.
- `claim` leases ready events of one function: a leased event is not handed out again
  until it is finished, rescheduled, or its lease ends (its consumer died). Delivery is
  therefore at least once.
- `finish` removes an event and adds to the function's durable counters in one step, so
  an event is never both gone and uncounted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class FunctionKey:
    """Events are queued, claimed and counted per function."""

    account: str
    region: str
    name: str


@dataclass
class QueuedEvent:
    request_id: str
    account: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    received_at: float = field(default_factory=time.time)
    available_at: float = 0.0
    # Invocations started so far (the record's approximateInvokeCount).
    attempts: int = 0
    # The event's retry state, as JSON (see invoke/async_state.py).
    extra: str = "{}"
    seq: int = 0

    @property
    def key(self) -> FunctionKey:
        return FunctionKey(self.account, self.region, self.function_name)


@dataclass
class FunctionQueueInfo:
    """One function's backlog, as visibility and the scheduler see it."""

    key: FunctionKey
    depth: int  # events queued, ready or waiting for a retry
    ready: int  # events that could run now (leased ones included)
    oldest_received_at: float | None
    next_available_at: float | None
    counters: dict[str, int] = field(default_factory=dict)


class EventQueue(Protocol):
    async def put(self, event: QueuedEvent) -> None:
        """Return once the event is durable."""
        ...

    async def claim(
        self, key: FunctionKey, limit: int, *, now: float, received_before: float | None = None
    ) -> list[QueuedEvent]:
        """Lease up to `limit` of the function's ready events, oldest first.

        With `received_before`, only events received before that time (expired ones).
        """
        ...

    async def finish(self, event: QueuedEvent, counters: Mapping[str, int] | None = None) -> None:
        """The event is done (delivered, or dropped): remove it and add to its function's counters."""
        ...

    async def reschedule(
        self, event: QueuedEvent, available_at: float, counters: Mapping[str, int] | None = None
    ) -> None:
        """Give a leased event back, with its updated `attempts` and `extra`, ready at `available_at`."""
        ...

    async def count(self, key: FunctionKey, counters: Mapping[str, int]) -> None:
        """Add to a function's durable counters."""
        ...

    def release(self, events: Sequence[QueuedEvent]) -> None:
        """Give leased events back unchanged (they are ready again at once)."""
        ...

    async def release_leases(self) -> None:
        """Start of a consumer that is the only one: every lease is stale."""
        ...

    async def functions(self, now: float) -> list[FunctionQueueInfo]:
        """Every function with queued events or counters."""
        ...

    async def close(self) -> None: ...
