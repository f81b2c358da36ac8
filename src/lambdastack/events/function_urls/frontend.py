"""Serve Function URLs: requests whose Host is `<url-id>.lambda-url.<region>.<anything>`.

What Lambda answers, and so what this answers:
- an unknown URL: 403 `{"Message":null}` (AccessDeniedException);
- a URL whose resource-based policy does not let anyone invoke it (AuthType NONE: both
  lambda:InvokeFunctionUrl and lambda:InvokeFunction for Principal "*"): 403
  `{"Message":"Forbidden"}`; AWS_IAM URLs need a SigV4 signature that this server cannot
  verify yet, and answer the same;
- a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) on a URL with a
  CORS configuration: answered here, without invoking;
- a function error, a timeout, or a result that is no HTTP response: 502 `Internal Server
  Error`;
- what Invoke would refuse (a body over 6 MB, a throttle, a function not ready): Invoke's
  status with `{"Message": ...}`.
Every answer carries `x-amzn-RequestId`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.api.asgi import Receive, Scope, Send
from lambdastack.control.function_urls import FunctionUrlService
from lambdastack.control.policies import PolicyService, allows
from lambdastack.events.function_urls import payload
from lambdastack.invoke.service import SYNC_PAYLOAD_LIMIT, InvokeService
from lambdastack.store.function_urls import FunctionUrlRecord

URL_HOST = re.compile(r"([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.")
INTERNAL_ERROR = payload.UrlResponse(502, [("content-type", "text/plain")], b"Internal Server Error")
FORBIDDEN = payload.UrlResponse(403, [("content-type", "application/json"),
                                      ("x-amzn-errortype", "AccessDeniedException")], b'{"Message":"Forbidden"}')
UNKNOWN = payload.UrlResponse(403, [("content-type", "application/json"),
                                    ("x-amzn-errortype", "AccessDeniedException")], b'{"Message":null}')


@dataclass
class _Caller:
    request_id: str
    account: str
    region: str


def url_id_of(scope: Scope) -> str | None:
    """The URL id a request's Host names, if it names one."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            match = URL_HOST.match(value.decode("latin-1").lower())
            return match.group(1) if match else None
    return None


class FunctionUrlFrontend:
    def __init__(self, urls: FunctionUrlService, policies: PolicyService, invoker: InvokeService) -> None:
        self.urls = urls
        self.policies = policies
        self.invoker = invoker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        answer = await self._answer(scope, receive, request_id)
        headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in answer.headers]
        headers += [(b"content-length", str(len(answer.body)).encode()), (b"x-amzn-requestid", request_id.encode())]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope: Scope, receive: Receive, request_id: str) -> payload.UrlResponse:
        url_id = url_id_of(scope) or ""
        record = self.urls.by_url_id(url_id)
        if record is None:
            return UNKNOWN
        request = _request(scope)
        origin = _header(request, "origin")
        cors = record.cors or None
        if (cors is not None and request.method == "OPTIONS" and origin
                and _header(request, "access-control-request-method")):
            return payload.UrlResponse(200, _preflight_headers(cors, origin))
        if not self._allowed(record):
            return FORBIDDEN
        try:
            request.body = await _read_body(receive)
        except errors.LambdaError as e:
            return _lambda_error(e)
        host = _header(request, "host").split(":", 1)[0]
        event = payload.event(request, url_id=url_id, domain=host, account_id="anonymous", request_id=request_id,
                              now=dt.datetime.now(dt.UTC))
        try:
            result = await self.invoker.invoke(
                _Caller(request_id, record.account, record.region),
                {"FunctionName": record.function_name, "Qualifier": record.qualifier or None,
                 "Payload": orjson.dumps(event)},
            )
        except errors.LambdaError as e:
            return _lambda_error(e)
        if result.get("FunctionError"):
            return INTERNAL_ERROR
        try:
            answer = payload.response(result["Payload"])
        except payload.BadResponse:
            return INTERNAL_ERROR
        if cors is not None and origin:
            answer.headers += _cors_headers(cors, origin)
        return answer

    def _allowed(self, record: FunctionUrlRecord) -> bool:
        if record.auth_type != "NONE":
            return False  # AWS_IAM: SigV4 signatures are not verified yet
        statements = self.policies.statements(record.account, record.region, record.function_name, record.qualifier)
        conditions = {"lambda:FunctionUrlAuthType": "NONE", "lambda:InvokedViaFunctionUrl": "true"}
        return (allows(statements, "lambda:InvokeFunctionUrl", public=True, conditions=conditions)
                and allows(statements, "lambda:InvokeFunction", public=True, conditions=conditions))


def _request(scope: Scope) -> payload.UrlRequest:
    client = scope.get("client") or ("", 0)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    return payload.UrlRequest(
        method=scope["method"], raw_path=raw_path, raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers, body=b"", source_ip=client[0], protocol=f"HTTP/{scope.get('http_version', '1.1')}",
    )


def _header(request: payload.UrlRequest, name: str) -> str:
    return next((v for k, v in request.headers if k.lower() == name), "")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > SYNC_PAYLOAD_LIMIT:
            raise errors.RequestTooLarge(
                f"Request must be smaller than {SYNC_PAYLOAD_LIMIT} bytes for the InvokeFunction operation")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _lambda_error(e: errors.LambdaError) -> payload.UrlResponse:
    return payload.UrlResponse(e.status, [("content-type", "application/json"), ("x-amzn-errortype", e.code)],
                               orjson.dumps({"Message": e.message}))


def _allowed_origin(cors: dict[str, Any], origin: str) -> str | None:
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def _cors_headers(cors: dict[str, Any], origin: str) -> list[tuple[str, str]]:
    allowed = _allowed_origin(cors, origin)
    if allowed is None:
        return []
    headers = [("access-control-allow-origin", allowed)]
    if cors.get("ExposeHeaders"):
        headers.append(("access-control-expose-headers", ",".join(cors["ExposeHeaders"])))
    if cors.get("AllowCredentials"):
        headers.append(("access-control-allow-credentials", "true"))
    if allowed != "*":
        headers.append(("vary", "Origin"))
    return headers


def _preflight_headers(cors: dict[str, Any], origin: str) -> list[tuple[str, str]]:
    headers = _cors_headers(cors, origin)
    if not headers:
        return []
    if cors.get("AllowMethods"):
        headers.append(("access-control-allow-methods", ",".join(cors["AllowMethods"])))
    if cors.get("AllowHeaders"):
        headers.append(("access-control-allow-headers", ",".join(cors["AllowHeaders"])))
    if cors.get("MaxAge") is not None:
        headers.append(("access-control-max-age", str(cors["MaxAge"])))
    return headers


class WithFunctionUrls:
    """The server's one ASGI app: requests to a Function URL's host go to the URL, all else to the API."""

    def __init__(self, api: Any, frontend: FunctionUrlFrontend) -> None:
        self.api = api
        self.frontend = frontend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and url_id_of(scope) is not None:
            await self.frontend(scope, receive, send)
        else:
            await self.api(scope, receive, send)
