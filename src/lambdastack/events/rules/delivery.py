"""What a rule's target receives, and its delivery: an asynchronous invocation of the function.

The event as it is, or the target's `Input` (constant JSON), `InputPath` (a part of the event,
`$.detail.order`) or `InputTransformer` (`InputPathsMap` values put into `InputTemplate` at
`<name>`: as JSON outside quotes, as text inside them; `<aws.events.event.json>`,
`<aws.events.rule-arn>` and `<aws.events.rule-name>` are predefined). Invocations go through the
durable asynchronous queue, so retries, event age and destinations apply as for any `Event`
invocation.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from lambdastack.control.rules import ActiveRule

log = logging.getLogger("lambdastack.events.rules")

Enqueue = Callable[[str, str, str, str | None, bytes, str | None], Awaitable[None]]
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")
_MISSING = object()


def json_path(event: Any, path: str) -> Any:
    """A simple JSONPath (`$`, `$.a.b`, `$.a[0]`) into the event; _MISSING if it leads nowhere."""
    if path == "$":
        return event
    value = event
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:] if path.startswith("$") else path):
        key, index = part
        if key:
            value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def payload_for(event: dict[str, Any], target: dict[str, Any], rule: ActiveRule) -> bytes:
    if target.get("Input") is not None:
        return str(target["Input"]).encode()
    if target.get("InputPath") is not None:
        value = json_path(event, target["InputPath"])
        return orjson.dumps(None if value is _MISSING else value)
    transformer = target.get("InputTransformer")
    if transformer is not None:
        return _transform(event, transformer, rule).encode()
    return orjson.dumps(event)


def _transform(event: dict[str, Any], transformer: dict[str, Any], rule: ActiveRule) -> str:
    values: dict[str, Any] = {
        "aws.events.event.json": event, "aws.events.rule-arn": rule.arn, "aws.events.rule-name": rule.record.name,
        "aws.events.event": event,
    }
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        found = json_path(event, path)
        values[name] = None if found is _MISSING else found
    template: str = transformer["InputTemplate"]
    out: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in values:
            continue
        out.append(template[position:match.start()])
        value = values[match.group(1)]
        quoted = template[:match.start()].count('"') % 2 == 1  # inside a JSON string
        if quoted:
            out.append(value if isinstance(value, str) else orjson.dumps(value).decode())
        else:
            out.append(orjson.dumps(value).decode())
        position = match.end()
    out.append(template[position:])
    return "".join(out)


def function_of(arn: str) -> tuple[str, str, str, str | None]:
    """(account, region, name, qualifier) of a function ARN."""
    parts = arn.split(":")
    return parts[4], parts[3], parts[6], parts[7] if len(parts) > 7 else None


async def deliver(enqueue: Enqueue, event: dict[str, Any], rule: ActiveRule, request_id: str | None = None) -> None:
    """Invoke each of the rule's targets with the event; one failing target does not stop the others."""
    for target in rule.targets:
        account, region, name, qualifier = function_of(target["Arn"])
        # A scheduled firing has a request id of its own per target: queued twice, it is refused.
        rid = None if request_id is None else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{request_id}/{target['Id']}"))
        try:
            await enqueue(account, region, name, qualifier, payload_for(event, target, rule), rid)
        except sqlite3.IntegrityError:
            log.info("rule %s: event %s for %s was queued already (before a restart)", rule.arn, event["id"],
                     target["Arn"])
        except Exception as e:
            log.warning("rule %s: target %s not invoked: %s", rule.arn, target["Arn"], e)
