"""Serve Function URLs: requests whose Host is `<url-id>.lambda-url.<region>.<anything>`.

What Lambda answers, and so what this answers:
- an unknown URL: 403 `{"Message":null}` (AccessDeniedException);
- a URL whose resource-based policy does not let anyone invoke it (AuthType NONE: both
  lambda:InvokeFunctionUrl and lambda:InvokeFunction for Principal "*"): 403
  `{"Message":"Forbidden"}`; an AWS_IAM URL answers the same to a request without a valid
  SigV4 signature (service `lambda`) by credentials the server accepts (identity.signatures);
  a signed request's principal is the event's `requestContext.authorizer.iam`;
- a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) on a URL with a
  CORS configuration: answered here, without invoking;
- a function error, a timeout, or a result that is no HTTP response: 502 `Internal Server
  Error`;
- what Invoke would refuse (a body over 6 MB, a throttle, a function not ready): Invoke's
  status with `{"Message": ...}`.
Every answer carries `x-amzn-RequestId`. A RESPONSE_STREAM URL sends the body as the function
streams it (chunked), with the status and headers of its `HttpResponseStream.from` prelude,
up to 20 MB.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors, ids
from lambdastack.api.asgi import Receive, Scope, Send, read_body
from lambdastack.control.function_urls import FunctionUrlService
from lambdastack.control.policies import PolicyService, allows
from lambdastack.events.http import cors as cors_rules
from lambdastack.events.http import payload_v2 as payload
from lambdastack.events.http.request import HttpResponse, header, request_of
from lambdastack.identity.signatures import SignatureVerifier
from lambdastack.invoke.service import SYNC_PAYLOAD_LIMIT, InvokeService
from lambdastack.observe.tracing.header import TraceHeader
from lambdastack.observe.tracing.header import incoming as incoming_trace
from lambdastack.store.function_urls import FunctionUrlRecord

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
STREAM_LIMIT = 20 * 1024 * 1024  # a streamed response's default maximum
URL_HOST = re.compile(r"([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.")
INTERNAL_ERROR = HttpResponse(502, [("content-type", "text/plain")], b"Internal Server Error")
FORBIDDEN = HttpResponse(403, [("content-type", "application/json"),
                                      ("x-amzn-errortype", "AccessDeniedException")], b'{"Message":"Forbidden"}')
UNKNOWN = HttpResponse(403, [("content-type", "application/json"),
                                    ("x-amzn-errortype", "AccessDeniedException")], b'{"Message":null}')


@dataclass
class _Streamed:
    """An answer whose body comes as the function streams it."""

    status: int
    headers: list[tuple[str, str]]
    first: bytes
    rest: AsyncIterator[bytes]


@dataclass
class _Caller:
    request_id: str
    account: str
    region: str
    trace: TraceHeader | None = None


def url_id_of(scope: Scope) -> str | None:
    """The URL id a request's Host names, if it names one."""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            match = URL_HOST.match(value.decode("latin-1").lower())
            return match.group(1) if match else None
    return None


class FunctionUrlFrontend:
    def __init__(self, urls: FunctionUrlService, policies: PolicyService, invoker: InvokeService,
                 signatures: SignatureVerifier) -> None:
        self.urls = urls
        self.policies = policies
        self.invoker = invoker
        self.signatures = signatures

    def serves(self, scope: Scope) -> bool:
        return url_id_of(scope) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = ids.request_id()
        answer = await self._answer(scope, receive, request_id)
        headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in answer.headers]
        headers.append((b"x-amzn-requestid", request_id.encode()))
        if isinstance(answer, HttpResponse):
            headers.append((b"content-length", str(len(answer.body)).encode()))
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        sent = len(answer.first)
        if answer.first:
            await send({"type": "http.response.body", "body": answer.first, "more_body": True})
        try:
            async for chunk in answer.rest:
                chunk = chunk[:max(0, STREAM_LIMIT - sent)]
                if chunk:
                    sent += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except _Failed:
            pass  # the status is out: the body ends where the function failed
        await send({"type": "http.response.body", "body": b""})

    async def _answer(self, scope: Scope, receive: Receive, request_id: str) -> HttpResponse | _Streamed:
        url_id = url_id_of(scope) or ""
        record = self.urls.by_url_id(url_id)
        if record is None:
            return UNKNOWN
        request = request_of(scope)
        origin = header(request, "origin")
        cors = record.cors or None
        if cors is not None and cors_rules.is_preflight(request.method, origin,
                                                        header(request, "access-control-request-method")):
            return HttpResponse(200, cors_rules.preflight_headers(cors, origin))
        if record.auth_type == "NONE" and not self._allowed(record):
            return FORBIDDEN
        try:
            # A URL's body over the limit keeps the answer it has had (RequestTooLargeException);
            # the Lambda API's own is RequestEntityTooLargeException, as AWS sends it.
            request.body = await read_body(receive, SYNC_PAYLOAD_LIMIT, "Invoke", errors.RequestTooLarge)
        except errors.LambdaError as e:
            return _lambda_error(e)
        account_id, authorizer = "anonymous", None
        if record.auth_type == "AWS_IAM":
            principal = self.signatures.verify(method=request.method, raw_path=request.raw_path,
                                               raw_query=request.raw_query, headers=request.headers,
                                               body=request.body, service="lambda")
            if principal is None:
                return FORBIDDEN
            account_id, authorizer = principal.account_id, {"iam": principal.as_event()}
        host = header(request, "host").split(":", 1)[0]
        event = payload.event(request, api_id=url_id, domain=host, account_id=account_id, request_id=request_id,
                              now=dt.datetime.now(dt.UTC), authorizer=authorizer)
        caller = _Caller(request_id, record.account, record.region,
                         incoming_trace(header(request, "x-amzn-trace-id"), header(request, "traceparent")))
        params = {"FunctionName": record.function_name, "Qualifier": record.qualifier or None,
                  "Payload": orjson.dumps(event)}
        extra = cors_rules.headers(cors, origin) if cors is not None and origin else []
        try:
            if record.invoke_mode == "RESPONSE_STREAM":
                streamed = await self._streamed(caller, params)
                if isinstance(streamed, _Streamed):
                    streamed.headers += extra
                    return streamed
                result = streamed
            else:
                result = await self.invoker.invoke(caller, params)
        except errors.LambdaError as e:
            return _lambda_error(e)
        if result.get("FunctionError"):
            return INTERNAL_ERROR
        try:
            answer = payload.response(result["Payload"])
        except payload.BadResponse:
            return INTERNAL_ERROR
        answer.headers += extra
        return answer

    async def _streamed(self, caller: _Caller, params: dict[str, Any]) -> _Streamed | dict[str, Any]:
        """A streamed answer; or, for a function that did not stream, its result as Invoke's."""
        result = await self.invoker.invoke_with_response_stream(caller, params)
        content_type = result["ResponseStreamContentType"]
        chunks = _payload_chunks(result["EventStream"])
        if content_type != HTTP_INTEGRATION:
            first, failed = await _first_chunk(chunks)
            if failed:
                return {"FunctionError": "Unhandled"}
            if content_type == "application/json" and not first.ended:
                return {"Payload": first.data}  # answered without streaming: read as a buffered answer
            return _Streamed(200, [("content-type", content_type)], first.data, chunks)
        head = b""
        try:
            async for chunk in chunks:
                head += chunk
                if PRELUDE_END in head:
                    break
            else:
                return {"FunctionError": "Unhandled"}
        except _Failed:
            return {"FunctionError": "Unhandled"}
        prelude, _, body = head.partition(PRELUDE_END)
        try:
            metadata = orjson.loads(prelude or b"{}")
            answer = payload.response(orjson.dumps({"statusCode": 200, **metadata, "body": None}))
        except (orjson.JSONDecodeError, payload.BadResponse, TypeError):
            return {"FunctionError": "Unhandled"}
        headers = [(k, v) for k, v in answer.headers if not (k == "content-type" and "content-type" not in
                                                              _lower_keys(metadata.get("headers")))]
        if not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/octet-stream"))
        return _Streamed(answer.status, headers, body, chunks)

    def _allowed(self, record: FunctionUrlRecord) -> bool:
        """An AuthType NONE URL: whether its resource policy lets anyone invoke it."""
        statements = self.policies.statements(record.account, record.region, record.function_name, record.qualifier)
        conditions = {"lambda:FunctionUrlAuthType": "NONE", "lambda:InvokedViaFunctionUrl": "true"}
        return (allows(statements, "lambda:InvokeFunctionUrl", public=True, conditions=conditions)
                and allows(statements, "lambda:InvokeFunction", public=True, conditions=conditions))


class _First:
    def __init__(self, data: bytes, ended: bool) -> None:
        self.data = data
        self.ended = ended


async def _payload_chunks(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """The body bytes of InvokeWithResponseStream's events; an error ends them (raises _Failed)."""
    async for event in events:
        if "PayloadChunk" in event:
            yield event["PayloadChunk"]["Payload"]
        elif event.get("InvokeComplete", {}).get("ErrorCode"):
            raise _Failed()


class _Failed(Exception):
    """The function failed while (or before) streaming."""


async def _first_chunk(chunks: AsyncIterator[bytes]) -> tuple[_First, bool]:
    """The first chunk, whether it was all there is, and whether the function failed first."""
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        return _First(b"", True), False
    except _Failed:
        return _First(b"", True), True
    return _First(first, False), False


def _lower_keys(headers: Any) -> set[str]:
    return {str(k).lower() for k in headers} if isinstance(headers, dict) else set()


def _lambda_error(e: errors.LambdaError) -> HttpResponse:
    return HttpResponse(e.status, [("content-type", "application/json"), ("x-amzn-errortype", e.code)],
                               orjson.dumps({"Message": e.message}))
