"""Fire EventBridge Scheduler schedules: each due time once, durably, as the target's Input.

Every second, each enabled schedule is checked: the times it was due since it last fired (or
since it was made, or its StartDate) fire in order, each at its place in the flexible window,
and each is recorded as fired right after its invocation is queued. An invocation is queued
with a request id made from the schedule and the time, so a time fired again after a crash
(between the queueing and the record) is refused by the queue while it is still there. Times
more than CATCH_UP_S in the past (the server was down) are skipped, and logged. A schedule
with no firing left is completed (deleted, with ActionAfterCompletion DELETE).

The function receives the target's `Input` (`{}` without one), with the context attributes
`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
`<aws.scheduler.execution-id>` and `<aws.scheduler.attempt-number>` put in.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lambdastack.control.scheduler import ActiveSchedule, ScheduleService
from lambdastack.events.rules.delivery import Enqueue, function_of
from lambdastack.events.ticker import SecondTicker

log = logging.getLogger("lambdastack.events.schedules")

CATCH_UP_S = 15 * 60
ControlCall = Callable[..., Awaitable[Any]]


def payload_of(schedule: ActiveSchedule, at: dt.datetime, execution_id: str) -> bytes:
    text = schedule.target.get("Input")
    if text is None:
        return b"{}"
    for name, value in (("schedule-arn", schedule.arn), ("scheduled-time", at.strftime("%Y-%m-%dT%H:%M:%SZ")),
                        ("execution-id", execution_id), ("attempt-number", "1")):
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return str(text).encode()


class ScheduleRunner:
    def __init__(self, schedules: ScheduleService, enqueue: Enqueue, control: ControlCall) -> None:
        self.schedules = schedules
        self.enqueue = enqueue
        self.control = control
        self._ticker = SecondTicker(self.tick, log, "schedules")

    def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()

    async def tick(self, now: dt.datetime) -> None:
        for schedule in await self.control(self.schedules.active):
            timing = schedule.timing
            since = dt.datetime.fromtimestamp(schedule.record.last_fired or schedule.record.created, dt.UTC)
            due = timing.next_after(since)
            while due is not None and due + timing.offset(due) <= now:
                if (now - due).total_seconds() <= CATCH_UP_S + timing.flexible_s:
                    await self._fire(schedule, due)
                else:
                    log.warning("schedule %s: %s passed while the server was down (beyond the %d s catch-up window)",
                                schedule.arn, due.isoformat(), CATCH_UP_S)
                await self.control(self.schedules.fired, schedule, due.timestamp())
                due = timing.next_after(due)
            if due is None and schedule.record.last_fired is not None:
                await self.control(self.schedules.completed, schedule)

    async def _fire(self, schedule: ActiveSchedule, at: dt.datetime) -> None:
        execution_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{schedule.arn}@{at.isoformat()}"))
        account, region, name, qualifier = function_of(schedule.target["Arn"])
        try:
            await self.enqueue(account, region, name, qualifier, payload_of(schedule, at, execution_id), execution_id)
        except sqlite3.IntegrityError:
            log.info("schedule %s: %s was queued already (before a restart)", schedule.arn, at.isoformat())
        except Exception as e:
            log.warning("schedule %s: target %s not invoked: %s", schedule.arn, schedule.target["Arn"], e)
