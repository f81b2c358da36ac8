"""Uploads to self-hosted S3-compatible stores run functions: their webhook notifications, taken in.

MinIO (`notify_webhook` with `auth_token`) and Ceph RGW (an HTTP push endpoint) POST JSON
notifications that carry S3 event records (`{"Records": [...]}`; MinIO adds `EventName` and
`Key`). `POST /_lambdastack/s3-events/<function>[?qualifier=Q]` takes one and invokes the
function asynchronously with `{"Records": [...]}`, the event an S3 notification gives a Lambda
function, through the durable queue (retries and destinations apply). The route is closed
unless the server has a token (`serve --s3-webhook-token`), which a request carries as
`Authorization: Bearer <token>` (what MinIO sends for its `auth_token`) or `?token=<token>`
(for stores that cannot set a header).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote

import orjson

from lambdastack import errors
from lambdastack.api.asgi import Receive, Scope, Send, read_body
from lambdastack.api.internal import send_json

ROUTE = "/_lambdastack/s3-events/"
MAX_BODY = 1024 * 1024  # an asynchronous invocation's payload limit
Enqueue = Callable[[str, str, str, str | None, bytes], Awaitable[None]]


def s3_webhook_route(token: str | None, enqueue: Enqueue, account: str, region: str) -> Callable[
        [Scope, Receive, Send], Awaitable[None]]:
    async def take(scope: Scope, receive: Receive, send: Send) -> None:
        if token is None:
            await send_json(send, 404, {"message": "S3 webhooks are off: start the server with --s3-webhook-token"})
            return
        if scope["method"] != "POST":
            await send_json(send, 405, {"message": "Method not allowed"})
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = _bearer(scope) or (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            await send_json(send, 403, {"message": "Forbidden: a missing or wrong token"})
            return
        function = unquote(scope["path"][len(ROUTE):]).strip("/")
        if not function:
            await send_json(send, 404, {"message": f"POST {ROUTE}<function name>"})
            return
        try:
            body = await read_body(receive, MAX_BODY, "Invoke")
            notification = orjson.loads(body)
        except errors.LambdaError as e:
            await send_json(send, 413, {"message": e.message})
            return
        except orjson.JSONDecodeError:
            await send_json(send, 400, {"message": "The notification is not JSON"})
            return
        records = notification.get("Records") if isinstance(notification, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) and "s3" in r for r in records):
            await send_json(send, 400, {"message": "The notification carries no S3 event records (Records)"})
            return
        if not records:
            await send_json(send, 200, {"queued": 0})  # a store's test notification
            return
        qualifier = (query.get("qualifier") or [None])[0]
        try:
            await enqueue(account, region, function, qualifier, orjson.dumps({"Records": records}))
        except errors.LambdaError as e:
            await send_json(send, e.status, {"message": e.message})
            return
        await send_json(send, 202, {"queued": len(records)})

    return take


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            return text[len("Bearer "):].strip() if text.lower().startswith("bearer ") else text
    return ""


__all__ = ["ROUTE", "s3_webhook_route"]
