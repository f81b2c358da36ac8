"""How many pollers an SQS mapping runs: more while the queue has a backlog, fewer after.

As Lambda does it: a mapping starts with a few pollers (five, or its
`ScalingConfig.MaximumConcurrency` if that is lower) and, while messages keep coming, adds
pollers up to its maximum concurrency; when the backlog is gone, the added pollers stop.
Here the backlog is read from the pollers themselves: a second in which no receive came
back empty, and some brought messages or every poller was busy with a batch, adds one
poller; an added poller stops at its first empty receive. Each poller has one batch in
flight at a time, so pollers are concurrent invocations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from lambdastack.events.mappings.sqs import SqsMapping, SqsPoller

SCALE_INTERVAL_S = 1.0


class SqsScaling:
    def __init__(self, mapping: SqsMapping, new_poller: Callable[[], SqsPoller], base: int, most: int) -> None:
        self.mapping = mapping
        self.new_poller = new_poller
        self.base = max(1, min(base, most))
        self.most = most
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pollers(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        for _ in range(self.base):
            self._add(stop, extra=False)
        try:
            while not stop.is_set():
                self.mapping.empty_receives = self.mapping.full_receives = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SCALE_INTERVAL_S)
                if not stop.is_set() and self._backlog() and self.pollers < self.most:
                    self._add(stop, extra=True)
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise
        finally:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _backlog(self) -> bool:
        m = self.mapping
        return m.empty_receives == 0 and (m.full_receives > 0 or m.in_flight >= self.pollers)

    def _add(self, stop: asyncio.Event, extra: bool) -> None:
        task = asyncio.ensure_future(self.new_poller().run(stop, extra=extra))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
