"""A task that calls `tick(now)` just after each second starts, until stopped; a failing tick
is logged and the next second comes anyway. Scheduled rules and schedules both run on one."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

TICK_S = 1.0


class SecondTicker:
    def __init__(self, tick: Callable[[dt.datetime], Awaitable[None]], log: logging.Logger, what: str) -> None:
        self.tick = tick
        self.log = log
        self.what = what
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick(dt.datetime.now(dt.UTC))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s: a tick failed", self.what)
            now = dt.datetime.now(dt.UTC)
            await asyncio.sleep(TICK_S - now.microsecond / 1e6 + 0.01)  # just after each second starts
