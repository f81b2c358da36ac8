"""Fire scheduled rules: each due time once, durably, with a catch-up window after downtime.

Every second, each enabled rule with a schedule is checked: the times it was due since it last
fired (or since it was made) are fired in order, each as EventBridge's `Scheduled Event`, and
each is recorded as fired right after its invocations are queued. An invocation is queued with
a request id made from the rule and the time, so a time fired again after a crash (between the
queueing and the record) is refused by the queue while it is still there. Times more than
CATCH_UP_S in the past (the server was down) are skipped, and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lambdastack.control.rules import ActiveRule, RuleService
from lambdastack.events.rules.delivery import Enqueue, deliver
from lambdastack.events.ticker import SecondTicker

log = logging.getLogger("lambdastack.events.rules")

CATCH_UP_S = 15 * 60
ControlCall = Callable[..., Awaitable[Any]]


def scheduled_event(rule: ActiveRule, at: dt.datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.arn}@{at.isoformat()}")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.record.account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": rule.record.region,
        "resources": [rule.arn],
        "detail": {},
    }


class Scheduler:
    def __init__(self, rules: RuleService, enqueue: Enqueue, control: ControlCall) -> None:
        self.rules = rules
        self.enqueue = enqueue
        self.control = control
        self._ticker = SecondTicker(self.tick, log, "scheduled rules")

    def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()

    async def tick(self, now: dt.datetime) -> None:
        rules = await self.control(self.rules.active)
        for rule in rules:
            if rule.schedule is None or not rule.targets:
                continue
            anchor = dt.datetime.fromtimestamp(rule.record.created, dt.UTC)
            since = dt.datetime.fromtimestamp(rule.record.last_fired or rule.record.created, dt.UTC)
            due = rule.schedule.next_after(since, anchor)
            while due is not None and due <= now:
                if (now - due).total_seconds() <= CATCH_UP_S:
                    await self._fire(rule, due)
                else:
                    log.warning("rule %s: %s passed while the server was down (beyond the %d s catch-up window)",
                                rule.arn, due.isoformat(), CATCH_UP_S)
                await self.control(self.rules.fired, rule, due.timestamp())
                due = rule.schedule.next_after(due, anchor)

    async def _fire(self, rule: ActiveRule, at: dt.datetime) -> None:
        event = scheduled_event(rule, at)
        await deliver(self.enqueue, event, rule, request_id=event["id"])
