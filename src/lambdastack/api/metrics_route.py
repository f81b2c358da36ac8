"""`GET /metrics` and `GET /_lambdastack/metrics`: the Prometheus scrape endpoint.

Served by path on the API's own host only: Function URLs and HTTP APIs are chosen by Host
first (frontdoor.py), so their own `/metrics` paths still reach their functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lambdastack.api.asgi import Receive, Scope, Send, send_response
from lambdastack.observe.cloudwatch_metrics.prometheus import CONTENT_TYPE, Scrape, exposition

ROUTE = "/_lambdastack/metrics"
PUBLIC_ROUTE = "/metrics"


def metrics_route(gather: Callable[[], Awaitable[Scrape]]) -> Callable[[Scope, Receive, Send], Any]:
    async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_response(send, 405, [(b"content-type", b"text/plain"), (b"allow", b"GET, HEAD")],
                                b"Method Not Allowed\n")
            return
        scrape = await gather()
        body = await asyncio.get_running_loop().run_in_executor(None, exposition, scrape)
        await send_response(send, 200, [(b"content-type", CONTENT_TYPE.encode())],
                            b"" if scope["method"] == "HEAD" else body)

    return metrics
