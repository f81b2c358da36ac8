"""Serve HTTP APIs: requests whose Host is `<api-id>.execute-api.<anything>`.

What API Gateway answers, and so what this answers (each with `apigw-requestid`):
- an unknown API, stage or route, or a route without an integration: 404 `{"message":"Not Found"}`;
- an API whose execute-api endpoint is disabled: 403 `{"message":"Forbidden"}`;
- a CORS preflight on an API with a CORS configuration: 204 with the CORS headers, without invoking;
- a body over 10 MB, or an event over Lambda's 6 MB: 413 `{"message":"Request Entity Too Large"}`;
- a function its resource-based policy does not let API Gateway invoke (no statement for
  `apigateway.amazonaws.com`, or `*`, whose source ARN matches
  `arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<method>/<path>`), unless the
  integration has a `CredentialsArn`; a function error; a malformed answer; a throttle: 500
  `{"message":"Internal Server Error"}`;
- an integration that takes longer than its `TimeoutInMillis` (at most 30 s): 503
  `{"message":"Service Unavailable"}` (the invocation itself runs on, as on AWS).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors, ids
from lambdastack.api.asgi import Receive, Scope, Send, read_body
from lambdastack.control.http_apis import ApiSnapshot, HttpApiService, lambda_target
from lambdastack.control.policies import PolicyService, allows_service
from lambdastack.events.http import cors as cors_rules
from lambdastack.events.http import payload_v1, payload_v2
from lambdastack.events.http.request import HttpRequest, HttpResponse, header, request_of
from lambdastack.events.http_apis.routing import ApiRouter, Selected
from lambdastack.invoke.service import SYNC_PAYLOAD_LIMIT, InvokeService
from lambdastack.observe.tracing.header import TraceHeader
from lambdastack.observe.tracing.header import incoming as incoming_trace

API_HOST = re.compile(r"([a-z0-9]{10})\.execute-api\.")
BODY_LIMIT = 10 * 1024 * 1024  # API Gateway's own limit on a request's body
SERVICE = "apigateway.amazonaws.com"


def _message(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")],
                        orjson.dumps({"message": message}))


NOT_FOUND = _message(404, "Not Found")
FORBIDDEN = _message(403, "Forbidden")
TOO_LARGE = _message(413, "Request Entity Too Large")
INTERNAL_ERROR = _message(500, "Internal Server Error")
UNAVAILABLE = _message(503, "Service Unavailable")


@dataclass
class _Caller:
    request_id: str
    account: str
    region: str
    trace: TraceHeader | None = None


def api_id_of(scope: Scope) -> str | None:
    """The API id a request's Host names, if it names one."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            match = API_HOST.match(value.decode("latin-1").lower())
            return match.group(1) if match else None
    return None


class HttpApiFrontend:
    def __init__(self, apis: HttpApiService, policies: PolicyService, invoker: InvokeService) -> None:
        self.apis = apis
        self.policies = policies
        self.invoker = invoker
        self._routers: dict[str, ApiRouter] = {}

    def serves(self, scope: Scope) -> bool:
        return api_id_of(scope) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = ids.request_id()
        answer = await self._answer(scope, receive, request_id)
        headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in answer.headers]
        headers.append((b"apigw-requestid", request_id.encode()))
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _router(self, api_id: str) -> ApiRouter | None:
        snapshot = self.apis.snapshot(api_id)
        if snapshot is None:
            return None
        router = self._routers.get(api_id)
        if router is None or router.snapshot is not snapshot:
            router = self._routers[api_id] = ApiRouter(snapshot)
        return router

    async def _answer(self, scope: Scope, receive: Receive, request_id: str) -> HttpResponse:
        router = self._router(api_id_of(scope) or "")
        if router is None:
            return NOT_FOUND
        api = router.snapshot.api
        if api.get("DisableExecuteApiEndpoint"):
            return FORBIDDEN
        request = request_of(scope)
        cors = api.get("CorsConfiguration")
        origin = header(request, "origin")
        if cors is not None and cors_rules.is_preflight(request.method, origin,
                                                        header(request, "access-control-request-method")):
            return HttpResponse(204, cors_rules.preflight_headers(cors, origin))
        selected = router.select(request.method, request.raw_path)
        if selected is None or not selected.route.get("Target", "").startswith("integrations/"):
            return NOT_FOUND
        integration = router.snapshot.integrations.get(selected.route["Target"].removeprefix("integrations/"))
        if integration is None:
            return INTERNAL_ERROR
        try:
            request.body = await read_body(receive, BODY_LIMIT, "Invoke")
        except errors.LambdaError:
            return TOO_LARGE
        answer = await self._invoke(router.snapshot, selected, integration, request, request_id)
        if cors is not None and origin:
            answer.headers += cors_rules.headers(cors, origin)
        return answer

    async def _invoke(self, snapshot: ApiSnapshot, selected: Selected, integration: dict[str, Any],
                      request: HttpRequest, request_id: str) -> HttpResponse:
        target = lambda_target(integration["IntegrationUri"], snapshot.account, snapshot.region)
        stage = selected.stage["StageName"]
        if not integration.get("CredentialsArn"):
            route = "$default" if selected.resource == "$default" else f"{request.method}{selected.resource}"
            source_arn = f"arn:aws:execute-api:{snapshot.region}:{snapshot.account}:{snapshot.api_id}/{stage}/{route}"
            statements = self.policies.statements(target.account, target.region, target.name, target.qualifier or "")
            if not allows_service(statements, "lambda:InvokeFunction", service=SERVICE, source_arn=source_arn,
                                  source_account=snapshot.account):
                return INTERNAL_ERROR
        host = header(request, "host").split(":", 1)[0]
        common: dict[str, Any] = dict(
            api_id=snapshot.api_id, domain=host, account_id=snapshot.account, request_id=request_id,
            now=dt.datetime.now(dt.UTC), stage=stage, path_parameters=selected.path_parameters or None,
            stage_variables=selected.stage.get("StageVariables") or None,
        )
        version = integration["PayloadFormatVersion"]
        if version == "1.0":
            event = payload_v1.event(request, resource=selected.resource, **common)
        else:
            event = payload_v2.event(request, route_key=selected.route["RouteKey"], **common)
        payload = orjson.dumps(event)
        if len(payload) > SYNC_PAYLOAD_LIMIT:
            return TOO_LARGE  # Lambda's limit on an event, under API Gateway's on a body
        params = {"FunctionName": target.name, "Qualifier": target.qualifier, "Payload": payload}
        caller = _Caller(request_id, target.account, target.region,
                         incoming_trace(header(request, "x-amzn-trace-id"), header(request, "traceparent")))
        invocation = asyncio.ensure_future(self.invoker.invoke(caller, params))
        if not await _finished_within(invocation, integration["TimeoutInMillis"] / 1000):
            invocation.add_done_callback(_drop_result)
            return UNAVAILABLE
        try:
            result = invocation.result()
        except errors.LambdaError as e:
            return TOO_LARGE if isinstance(e, errors.RequestTooLarge) else INTERNAL_ERROR
        if result.get("FunctionError"):
            return INTERNAL_ERROR
        try:
            if version == "1.0":
                return payload_v1.response(result["Payload"])
            return payload_v2.response(result["Payload"])
        except payload_v2.BadResponse:
            return INTERNAL_ERROR


async def _finished_within(task: asyncio.Future[Any], timeout: float) -> bool:
    """Whether `task` ends within `timeout` seconds; it goes on either way (asyncio.wait's
    bookkeeping, lighter: this is on every request's path)."""
    loop = asyncio.get_running_loop()
    woken = loop.create_future()

    def wake(_: object = None) -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_later(timeout, wake)
    task.add_done_callback(wake)
    try:
        await woken
    finally:
        timer.cancel()
        task.remove_done_callback(wake)
    return task.done()


def _drop_result(task: asyncio.Future[Any]) -> None:
    """Collect an invocation nobody waits for any more (its errors included)."""
    if not task.cancelled():
        task.exception()
