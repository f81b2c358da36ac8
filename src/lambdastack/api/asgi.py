"""The ASGI application of one AWS rest-json API (Lambda's, or API Gateway's), plus lambdastack's own
`/_lambdastack/` routes.

One request: match the route from botocore's model, parse members from where the model
puts them, validate them against the model's constraints, call the operation's handler,
and write its result (or its error) in the rest-json wire format botocore parses.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from lambdastack import errors, ids
from lambdastack.api.context import RequestContext
from lambdastack.api.eventstream import EventStreamEncoder
from lambdastack.api.routing import Router, parse_query
from lambdastack.api.sigv4 import caller_from
from lambdastack.api.validation import Validator
from lambdastack.api.wire import RequestParser, ResponseWriter
from lambdastack.observe.tracing.header import incoming as incoming_trace
from lambdastack.service_models import Operation, ServiceModel, lambda_model

log = logging.getLogger("lambdastack.api")

Handler = Callable[[RequestContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RawHandler = Callable[[Scope, Receive, Send], Awaitable[None]]

# AWS refuses request bodies over this size at the front door (a 50 MB zip, base64, in JSON).
MAX_REQUEST_BYTES = 70_167_211
# Invoke payloads have their own, smaller limit; stop reading as soon as it is passed.
INVOKE_OPERATIONS = {"Invoke", "InvokeWithResponseStream", "InvokeAsync"}


class LambdaApi:
    def __init__(
        self,
        operations: Mapping[str, Handler],
        internal: Mapping[str, RawHandler],
        *,
        account: str,
        default_region: str,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        request_limits: Mapping[str, int] | None = None,
        model: ServiceModel | None = None,
        validation_error: type[errors.LambdaError] = errors.Validation,
    ) -> None:
        self.model = model or lambda_model()
        self.router = Router(self.model)
        self.parser = RequestParser(self.model)
        self.validator = Validator(self.model, validation_error)
        self.writer = ResponseWriter(self.model)
        # The json protocol names the operation in a header (`AWSEvents.PutRule`), not in the path.
        self.target_prefix: str | None = self.model.metadata.get("targetPrefix") \
            if self.model.metadata.get("protocol") == "json" else None
        self.operations = dict(operations)
        self.internal = dict(internal)
        self.account = account
        self.default_region = default_region
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.request_limits = dict(request_limits or {})
        self._event_streams: dict[str, tuple[str, EventStreamEncoder] | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup:
                        await self.on_startup()
                except Exception as e:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self.on_shutdown:
                        await self.on_shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path.startswith("/_lambdastack/"):
            handler = self._internal_handler(path)
            if handler is not None:
                await handler(scope, receive, send)
                return
        request_id = ids.request_id()
        headers = _headers(scope)
        try:
            raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1").split("?", 1)[0]
            query = parse_query(scope.get("query_string", b""))
            operation, labels = self._operation(scope["method"], raw_path, query, headers)
            limit = self.request_limits.get(operation.name, MAX_REQUEST_BYTES)
            body = await read_body(receive, limit, operation.name)
            caller = caller_from(headers.get("authorization"), _first(query, "X-Amz-Credential"))
            principal = scope.get("lambdastack.principal")  # `serve --auth sigv4`: who signed
            ctx = RequestContext(
                request_id=request_id,
                account=principal.account_id if principal is not None else self.account,
                region=caller.region or self.default_region,
                base_url=_base_url(scope, headers),
                access_key=caller.access_key,
                trace=incoming_trace(headers.get("x-amzn-trace-id"), headers.get("traceparent")),
            )
            params = self.parser.parse(operation.input_shape, labels, query, headers, body)
            if operation.input_shape:
                self.validator.validate(operation.input_shape, params)
            operation_handler = self.operations.get(operation.name)
            if operation_handler is None:
                raise errors.NotImplementedOperation(
                    f"lambdastack does not implement the {operation.name} operation yet"
                )
            result = await operation_handler(ctx, params)
            events = self._events_of(operation.name, operation.output_shape, result)
            if events is not None and result is not None:
                await self._send_events(send, operation.name, operation.output_shape, result, events, request_id,
                                        operation.response_code)
                return
            status, out_headers, out_body = self.writer.output(
                operation.output_shape, result, operation.response_code
            )
            if operation.name == "DeleteFunction":
                status, out_body = 204, b""
        except errors.LambdaError as e:
            status, out_headers, out_body = self.writer.error(e)
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], path)
            status, out_headers, out_body = self.writer.error(
                errors.ServiceError("lambdastack hit an internal error; the server log has the details")
            )
        out_headers.append((b"x-amzn-requestid", request_id.encode()))
        await send_response(send, status, out_headers, out_body)

    def _operation(self, method: str, raw_path: str, query: list[tuple[str, str]],
                   headers: Mapping[str, str]) -> tuple[Operation, dict[str, str]]:
        """rest-json: by method and path; json (EventBridge): by the X-Amz-Target header."""
        if self.target_prefix is not None:
            prefix, _, name = headers.get("x-amz-target", "").partition(".")
            found = self.model.operations.get(name) if prefix == self.target_prefix else None
            if found is None:
                raise errors.UnknownOperation(f"No operation matches X-Amz-Target {headers.get('x-amz-target')}")
            return found, {}
        matched = self.router.match(method, raw_path, query)
        if matched is None:
            raise errors.UnknownOperation(f"No operation matches {method} {raw_path}")
        return matched

    # ------------------------------------------------------------------ event streams

    def _events_of(
        self, operation: str, output_shape: str | None, result: dict[str, Any] | None
    ) -> AsyncIterator[dict[str, Any]] | None:
        """The events of a result whose payload is an event stream (InvokeWithResponseStream)."""
        if operation not in self._event_streams:
            found: tuple[str, EventStreamEncoder] | None = None
            if output_shape is not None:
                shape = self.model.shape(output_shape)
                member = shape.get("payload")
                if member is not None:
                    stream_shape = shape["members"][member]["shape"]
                    if self.model.shape(stream_shape).get("eventstream"):
                        found = (member, EventStreamEncoder(self.model, stream_shape))
            self._event_streams[operation] = found
        plan = self._event_streams[operation]
        if plan is None or result is None or result.get(plan[0]) is None:
            return None
        events: AsyncIterator[dict[str, Any]] = result.pop(plan[0])
        return events

    async def _send_events(
        self, send: Send, operation: str, output_shape: str | None, result: dict[str, Any],
        events: AsyncIterator[dict[str, Any]], request_id: str, response_code: int,
    ) -> None:
        """Write the head now, then each event as it comes (chunked): the reader sees it at once.

        A reader that goes away does not stop the invocation (nor does it on Lambda): the
        remaining events are consumed and dropped.
        """
        plan = self._event_streams[operation]
        assert plan is not None
        encoder = plan[1]
        status, headers, _ = self.writer.output(output_shape, result, response_code)
        headers.append((b"x-amzn-requestid", request_id.encode()))
        connected = True
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
        except Exception:
            connected = False
        async for event in events:
            if not connected:
                continue
            try:
                await send({"type": "http.response.body", "body": encoder.encode(event), "more_body": True})
            except Exception:
                connected = False
        if connected:
            try:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception:
                pass

    def _internal_handler(self, path: str) -> RawHandler | None:
        # Exact routes first, then the longest prefix ending in "/".
        handler = self.internal.get(path)
        if handler is not None:
            return handler
        best: RawHandler | None = None
        best_len = 0
        for prefix, candidate in self.internal.items():
            if prefix.endswith("/") and path.startswith(prefix) and len(prefix) > best_len:
                best, best_len = candidate, len(prefix)
        return best


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(
    receive: Receive, limit: int, operation: str, too_large: type[errors.LambdaError] = errors.RequestEntityTooLarge,
) -> bytes:
    """The request body, refused as soon as it passes `limit`, as Lambda refuses it:
    `RequestEntityTooLargeException` (413) naming the operation (`InvokeFunction` for the invoke
    operations: "Request must be smaller than 6291456 bytes for the InvokeFunction operation")."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            name = "InvokeFunction" if operation in INVOKE_OPERATIONS else operation
            raise too_large(f"Request must be smaller than {limit} bytes for the {name} operation")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _first(query: list[tuple[str, str]], key: str) -> str | None:
    for k, v in query:
        if k == key:
            return v
    return None


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 9000)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"
