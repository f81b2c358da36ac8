"""lambdastack's own routes under `/_lambdastack/`: health, code downloads, and friends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from lambdastack.api.asgi import Receive, Scope, Send, send_response


async def send_json(send: Send, status: int, document: Any) -> None:
    await send_response(send, status, [(b"content-type", b"application/json")], orjson.dumps(document))


def health_route(describe: Callable[[], dict[str, Any]]) -> Callable[[Scope, Receive, Send], Any]:
    async def health(scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, describe())

    return health
