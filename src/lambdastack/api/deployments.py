"""`/_lambdastack/deployments`: safe deployments over HTTP.

    POST /_lambdastack/deployments                      start one (201)
    GET  /_lambdastack/deployments[?FunctionName=...]   list them, newest first (Marker, MaxItems)
    GET  /_lambdastack/deployments/<id>                 one deployment
    GET  /_lambdastack/deployments/<id>/progress        live: server-sent events, one per change

Errors have Lambda's wire format (`x-amzn-ErrorType`, a `Type` and a `message`). The
region is the signature's when the request is signed, else `Region` (body or query),
else the server's default.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lambdastack import errors
from lambdastack.api.asgi import Receive, Scope, Send, send_response
from lambdastack.api.sigv4 import caller_from
from lambdastack.deploy.service import DeploymentService

ROUTE = "/_lambdastack/deployments"
MAX_BODY = 64 * 1024


async def _send_json(send: Send, status: int, document: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_response(send, status, [(b"content-type", b"application/json"), *(headers or [])],
                        orjson.dumps(document))


async def _send_error(send: Send, error: errors.LambdaError) -> None:
    await _send_json(send, error.status, {"Type": error.fault, "message": error.message},
                     [(b"x-amzn-errortype", error.code.encode())])


async def _body(receive: Receive) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.RequestEntityTooLarge(f"Request must be smaller than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    try:
        document = orjson.loads(b"".join(chunks) or b"{}")
    except orjson.JSONDecodeError as e:
        raise errors.InvalidRequestContent(f"Could not parse request body into json: {e}")
    if not isinstance(document, dict):
        raise errors.InvalidRequestContent("The request body must be a JSON object.")
    return document


def deployments_route(
    service: DeploymentService, account: str, default_region: str
) -> Callable[[Scope, Receive, Send], Any]:
    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        region = caller_from(headers.get("authorization")).region or query.get("Region") or default_region
        parts = [p for p in scope["path"][len(ROUTE):].split("/") if p]
        method = scope["method"]
        try:
            if not parts and method == "POST":
                body = await _body(receive)
                created = await service.create(body, account, body.get("Region") or region)
                await _send_json(send, 201, created)
            elif not parts and method == "GET":
                listed = await asyncio.to_thread(
                    service.list, account, region, function_name=query.get("FunctionName"),
                    marker=query.get("Marker"), max_items=_max_items(query.get("MaxItems")),
                )
                await _send_json(send, 200, listed)
            elif len(parts) == 1 and method == "GET":
                await _send_json(send, 200, await asyncio.to_thread(service.get, parts[0]))
            elif len(parts) == 2 and parts[1] == "progress" and method == "GET":
                await asyncio.to_thread(service.get, parts[0])  # 404 before the stream starts
                await _stream(service, parts[0], receive, send)
            else:
                raise errors.UnknownOperation(f"No operation matches {method} {scope['path']}")
        except errors.LambdaError as e:
            await _send_error(send, e)

    return route


def _max_items(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise errors.InvalidParameterValue("MaxItems must be a positive integer.")
    return int(value)


async def _stream(service: DeploymentService, deployment_id: str, receive: Receive, send: Send) -> None:
    """Server-sent events: `data: <deployment JSON>` after each change, until it finishes."""
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
    })

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.create_task(disconnected())
    try:
        async for document in service.watch(deployment_id):
            if watcher.done():
                return
            await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(document) + b"\n\n",
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
