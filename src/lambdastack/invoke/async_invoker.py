"""Runs queued asynchronous invocations.

It leases events from the durable queue, runs each through the same path as a synchronous
invocation, and removes it once it ran. An event whose run was interrupted by a crash is
leased again after a restart: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lambdastack import errors
from lambdastack.invoke.service import InvokeService
from lambdastack.store.queue import QueuedEvent, SqliteEventQueue

log = logging.getLogger("lambdastack.invoke.async")

LEASE_S = 960.0  # longer than the longest function timeout


class AsyncInvoker:
    def __init__(self, queue: SqliteEventQueue, service: InvokeService, concurrency: int = 64) -> None:
        self.queue = queue
        self.service = service
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def notify(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await asyncio.to_thread(self.queue.release_leases)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._running):
            task.cancel()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._running)
            events = await asyncio.to_thread(self.queue.claim, free, LEASE_S) if free > 0 else []
            for event in events:
                await self._slots.acquire()
                task = asyncio.create_task(self._run(event))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            if events and len(events) == free:
                continue
            next_at = await asyncio.to_thread(self.queue.next_available_at)
            delay = 1.0 if next_at is None else min(1.0, max(0.0, next_at - time.time()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay if not events else 0.01)

    async def _run(self, event: QueuedEvent) -> None:
        try:
            try:
                target = self.service.resolver.resolve(
                    event.function_name, event.qualifier, event.account, event.region
                )
                outcome = await self.service.run(target, event.request_id, event.payload)
                if outcome.function_error:
                    log.info("async invocation %s of %s failed: %s", event.request_id, event.function_name,
                             outcome.error_type)
            except errors.ResourceNotFound:
                log.warning("dropping async invocation %s: function %s no longer exists",
                            event.request_id, event.function_name)
            await asyncio.to_thread(self.queue.complete, [event.seq])
        except Exception:
            log.exception("async invocation %s could not run; it will be retried", event.request_id)
            await asyncio.to_thread(self.queue.retry, event.seq, time.time() + 5, event.attempts + 1, event.extra)
        finally:
            self._slots.release()
