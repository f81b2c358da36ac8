"""`GET /_lambdastack/async[/<function>][?region=...]`: the asynchronous queue, per function.

Queue depth, ready and running events, the oldest event's age, and the durable counters:
events succeeded, retried, throttled, failed and dropped (by reason), destination and
dead-letter deliveries and their failures; plus the latest drops and failed deliveries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from lambdastack.api.asgi import Receive, Scope, Send
from lambdastack.api.internal import send_json

ROUTE = "/_lambdastack/async"

Describe = Callable[[str | None, str | None], Awaitable[dict[str, Any]]]


def async_status_route(describe: Describe) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def status(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"message": "Method not allowed"})
            return
        name = unquote(scope["path"][len(ROUTE):].strip("/")) or None
        query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        region = (query.get("region") or [None])[0]
        document = await describe(name, region)
        if name is not None and not document["functions"] and not document["recentDrops"]:
            await send_json(send, 404, {"message": f"No asynchronous events of function {name}", **document})
            return
        await send_json(send, 200, document)

    return status
