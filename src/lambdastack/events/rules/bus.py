"""PutEvents on the default event bus: each entry becomes an event, matched against the enabled
rules' patterns of its account and region, and delivered to the matching rules' targets."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from lambdastack.control.rules import RuleService
from lambdastack.events.rules.delivery import Enqueue, deliver

ControlCall = Callable[..., Awaitable[Any]]


def event_of(entry: dict[str, Any], account: str, region: str) -> dict[str, Any] | dict[str, str]:
    """The event an entry makes, or its failure ({"ErrorCode", "ErrorMessage"})."""
    for member in ("Source", "DetailType", "Detail"):
        if not entry.get(member):
            return {"ErrorCode": "InvalidArgument", "ErrorMessage": f"Parameter {member} is not valid."}
    try:
        detail = orjson.loads(entry["Detail"])
    except orjson.JSONDecodeError:
        detail = None
    if not isinstance(detail, dict):
        return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    at = entry.get("Time") or dt.datetime.now(dt.UTC)
    if isinstance(at, int | float):
        at = dt.datetime.fromtimestamp(at, dt.UTC)
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
        "account": account, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": region,
        "resources": list(entry.get("Resources") or []), "detail": detail,
    }


class EventBus:
    def __init__(self, rules: RuleService, enqueue: Enqueue, control: ControlCall) -> None:
        self.rules = rules
        self.enqueue = enqueue
        self.control = control

    async def put_events(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        rules = [r for r in await self.control(self.rules.active)
                 if r.pattern is not None and (r.record.account, r.record.region) == (account, region)]
        results: list[dict[str, Any]] = []
        for entry in params["Entries"]:
            bus = entry.get("EventBusName") or "default"
            if bus != "default" and not bus.endswith(":event-bus/default"):
                results.append({"ErrorCode": "InvalidArgument", "ErrorMessage": f"Event bus {bus} does not exist."})
                continue
            event = event_of(entry, account, region)
            if "ErrorCode" in event:
                results.append(event)
                continue
            for rule in rules:
                if rule.pattern(event):
                    await deliver(self.enqueue, event, rule)
            results.append({"EventId": event["id"]})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}
