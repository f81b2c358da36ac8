"""`GET /_lambdastack/cost?since=30d&function=NAME&region=R&arch=A`: the cost report (JSON)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from lambdastack.api.asgi import Receive, Scope, Send
from lambdastack.api.internal import send_json
from lambdastack.cost import prices as price_file
from lambdastack.cost.prices import PriceError
from lambdastack.cost.report import build_report
from lambdastack.cost.since import SinceError, parse_since
from lambdastack.observe.usage.ledger import UsageRow

ROUTE = "/_lambdastack/cost"
DEFAULT_SINCE = "30d"

Rows = Callable[[float, str | None], Awaitable[list[UsageRow]]]


def cost_route(rows: Rows) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """`rows(since, function)`: the usage buckets, what is pending in memory included."""

    async def cost(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            await send_json(send, 405, {"message": "Method not allowed"})
            return
        query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))

        def one(name: str) -> str | None:
            return (query.get(name) or [None])[0]

        now = time.time()
        try:
            since = parse_since(one("since") or DEFAULT_SINCE, now)
            document: dict[str, Any] = await asyncio.to_thread(
                build_report, await rows(since, one("function")), price_file.load(), since, now,
                one("region"), one("arch"),
            )
        except (SinceError, PriceError) as e:
            await send_json(send, 400, {"Type": "User", "__type": "InvalidParameterValueException",
                                        "message": str(e)})
            return
        await send_json(send, 200, document)

    return cost
