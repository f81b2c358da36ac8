"""Flushes the usage ledger off the hot path and meters provisioned concurrency over time.

Every `SAMPLE_SECONDS` it charges each provisioned version for the environments it had ready
at the previous look, for the time since (so an environment counts from the first look that
saw it ready to the first look that no longer does: exact to a second). Every
`FLUSH_SECONDS` it writes the pending buckets from a thread. At shutdown it does both once
more, so a clean stop loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from lambdastack.observe.usage.ledger import FLUSH_SECONDS, UsageKey, UsageLedger

log = logging.getLogger("lambdastack.usage")

SAMPLE_SECONDS = 1.0

ProvisionedNow = Callable[[], Iterable[tuple[UsageKey, int]]]


class UsageKeeper:
    def __init__(self, ledger: UsageLedger, provisioned: ProvisionedNow, flush_seconds: float = FLUSH_SECONDS,
                 sample_seconds: float = SAMPLE_SECONDS) -> None:
        self.ledger = ledger
        self.provisioned = provisioned
        self.flush_seconds = flush_seconds
        self.sample_seconds = sample_seconds
        self._last_sample = time.monotonic()
        self._ready: dict[UsageKey, int] = {}  # what the last look saw
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        """Charge what was ready at the last look for the time since; remember what is ready now."""
        now = time.monotonic()
        elapsed_ms = int((now - self._last_sample) * 1000)
        if elapsed_ms <= 0:
            return
        self._last_sample = now
        for key, ready in self._ready.items():
            self.ledger.record_provisioned(key, ready * elapsed_ms)
        self._ready = {key: ready for key, ready in self.provisioned() if ready > 0}

    async def flush(self) -> None:
        """Take the pending buckets here, on the event loop that records, and write them from a thread."""
        self.sample()
        pending = self.ledger.take()
        try:
            await asyncio.to_thread(self.ledger.write, pending)
        except Exception:  # not a cancellation: the thread goes on and writes them
            self.ledger.give_back(pending)  # written next time (a full disk, a locked file)
            raise

    async def start(self) -> None:
        self._last_sample = time.monotonic()
        self._ready = {}
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while True:
            await asyncio.sleep(self.sample_seconds)
            try:
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self.flush_seconds
                    await self.flush()
                else:
                    self.sample()
            except Exception:
                log.exception("could not keep the usage ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
