"""The server's one ASGI app: which part of lambdastack a request is for.

By Host: a Function URL (`<url-id>.lambda-url.<region>.…`) or an HTTP API
(`<api-id>.execute-api.…`). By the `X-Amz-Target` header of the json protocol: EventBridge
(`AWSEvents.…`, the `events` client) and CloudWatch Logs (`Logs_20140328.…`, the `logs`
client). Otherwise by path: EventBridge Scheduler (`/schedules…`,
`/schedule-groups…`, the `scheduler` client), API Gateway's management API (`/v2/…`, the
`apigatewayv2` client), and everything else is Lambda's API. Requests signed for API
Gateway's REST API (`apigateway` client, no `/v2/`) get a clear refusal: lambdastack serves
HTTP APIs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from lambdastack.api.asgi import Receive, Scope, Send, send_response
from lambdastack.api.sigv4 import caller_from

REST_APIS_REFUSED = (
    "lambdastack serves API Gateway HTTP APIs (the apigatewayv2 API) only; REST APIs, WebSocket APIs, usage "
    "plans and API keys are not supported"
)


class HostFront(Protocol):
    def serves(self, scope: Scope) -> bool: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class FrontDoor:
    def __init__(self, lambda_api: Any, apigateway_api: Any, fronts: Sequence[HostFront],
                 by_target: dict[bytes, Any] | None = None, by_path: dict[str, Any] | None = None,
                 guard: Callable[[Any], Any] | None = None) -> None:
        self.lambda_api = lambda_api
        self.apigateway_api = apigateway_api
        self.fronts = tuple(fronts)
        self.by_target = dict(by_target or {})  # X-Amz-Target prefix (b"AWSEvents.") -> that service's API
        self.by_path = tuple((by_path or {}).items())  # first path segment ("/schedules") -> that service's API
        # What every request but a Function URL's or an HTTP API's passes first (`serve --auth sigv4`).
        self._apis = guard(self._route) if guard is not None else self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.lambda_api(scope, receive, send)
            return
        for front in self.fronts:
            if front.serves(scope):
                await front(scope, receive, send)
                return
        await self._apis(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.by_target:
            for name, value in scope.get("headers", ()):
                if name == b"x-amz-target":
                    prefix = value.split(b".", 1)[0] + b"."
                    if prefix in self.by_target:
                        await self.by_target[prefix](scope, receive, send)
                        return
        path: str = scope["path"]
        for prefix, api in self.by_path:
            if path == prefix or path.startswith(prefix + "/"):
                await api(scope, receive, send)
                return
        if path.startswith("/v2/"):
            await self.apigateway_api(scope, receive, send)
        elif _signed_for_api_gateway(scope):
            body = orjson.dumps({"message": REST_APIS_REFUSED})
            await send_response(send, 501, [(b"content-type", b"application/json"),
                                            (b"x-amzn-errortype", b"NotImplementedException")], body)
        else:
            await self.lambda_api(scope, receive, send)


def _signed_for_api_gateway(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return caller_from(value.decode("latin-1")).service == "apigateway"
    return False
