"""Flushes the usage ledger off the hot path and meters provisioned concurrency over time.

Every `FLUSH_SECONDS` it adds the time provisioned environments were kept ready since the
last look (environments ready x elapsed milliseconds), then writes the pending buckets from a
thread. At shutdown it does both once more, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from lambdastack.observe.usage.ledger import FLUSH_SECONDS, UsageKey, UsageLedger

log = logging.getLogger("lambdastack.usage")

ProvisionedNow = Callable[[], Iterable[tuple[UsageKey, int]]]


class UsageKeeper:
    def __init__(self, ledger: UsageLedger, provisioned: ProvisionedNow, interval: float = FLUSH_SECONDS) -> None:
        self.ledger = ledger
        self.provisioned = provisioned
        self.interval = interval
        self._last_sample = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """Charge provisioned environments ready now for the time since the last sample."""
        now = time.monotonic()
        elapsed_ms = int((now - self._last_sample) * 1000)
        self._last_sample = now
        if elapsed_ms <= 0:
            return
        for key, ready in self.provisioned():
            if ready > 0:
                self.ledger.record_provisioned(key, ready * elapsed_ms)

    async def flush(self) -> None:
        self.sample()
        await asyncio.to_thread(self.ledger.flush)

    async def start(self) -> None:
        self._last_sample = time.monotonic()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("could not write the usage ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
