"""The Invoke operation: synchronous, asynchronous (`Event`) and `DryRun` invocations; and
InvokeWithResponseStream."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lambdastack import errors
from lambdastack.file_systems import FileSystemMapping
from lambdastack.invoke.admission import Admission
from lambdastack.invoke.resolver import Resolver, Target
from lambdastack.invoke.specs import environment_spec, spec_key
from lambdastack.invoke.stream_relay import StreamRelay
from lambdastack.invoke.usage import usage_key
from lambdastack.observe.cloudwatch_metrics.recorder import ASYNC_RECEIVED, MetricsRecorder
from lambdastack.observe.metrics import Metrics
from lambdastack.observe.tracing import Sampler, TraceHeader, untraced_header
from lambdastack.observe.tracing.sampling import tracing_mode
from lambdastack.observe.usage.ledger import UsageLedger
from lambdastack.placement.local import LocalPlacement
from lambdastack.store.event_queue import EventQueue, QueuedEvent
from lambdastack.store.records import VersionRecord
from lambdastack.worker.environment import EnvironmentStartError
from lambdastack.worker.spec import EnvironmentSpec, Invocation, InvokeOutcome
from lambdastack.worker.streaming import ResponseSink

if TYPE_CHECKING:
    from lambdastack.observe.tracing.tracer import Tracing

log = logging.getLogger("lambdastack.invoke")

SYNC_PAYLOAD_LIMIT = 6_291_456
EVENT_PAYLOAD_LIMIT = 1_048_576
CLIENT_CONTEXT_LIMIT = 3583
LOG_TAIL_BYTES = 4096


def check_json(payload: bytes) -> None:
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        try:
            json.loads(payload)  # what orjson refuses but JSON allows (integers beyond 64 bits)
        except ValueError as e:
            raise errors.InvalidRequestContent(f"Could not parse request body into json: Could not parse payload "
                                               f"into json: {e}")


class Caller(Protocol):
    """Who asks for an invocation: the API's RequestContext is one (invoke does not know the API)."""

    request_id: str
    account: str
    region: str

class InvokeService:
    def __init__(
        self,
        resolver: Resolver,
        placement: LocalPlacement,
        code_path: Callable[[str], Path],
        queue: EventQueue,
        on_enqueued: Callable[[QueuedEvent], None] = lambda event: None,
        admission: Admission | None = None,
        file_systems: Mapping[str, FileSystemMapping] | None = None,
        file_systems_unavailable: str | None = None,
    ) -> None:
        self.resolver = resolver
        self.file_systems = dict(file_systems or {})
        self.file_systems_unavailable = file_systems_unavailable
        self.placement = placement
        self.code_path = code_path
        self.queue = queue
        self.on_enqueued = on_enqueued
        self.admission = admission or Admission(1000, lambda *_: None, lambda *_: 0)
        self._specs: dict[str, EnvironmentSpec] = {}
        self.metrics = Metrics()  # per version, for safe deployments
        self.usage: UsageLedger | None = None  # what each version used, for the cost report
        self.recorder: MetricsRecorder | None = None  # CloudWatch and Prometheus metrics
        self.sampler = Sampler.from_environment()
        self.tracing: Tracing | None = None  # the platform's spans, when an OTLP endpoint is configured

    def forget(self, account: str, region: str, name: str) -> None:
        """The function changed: drop what was cached about it."""
        self.resolver.invalidate(account, region, name)
        self.admission.forget(account, region, name)
        prefix = f"{account}:{region}:{name}:"
        for key in [k for k in self._specs if k.startswith(prefix)]:
            del self._specs[key]

    def spec(self, record: VersionRecord) -> EnvironmentSpec:
        key = spec_key(record)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = environment_spec(
                record, self.code_path, self.file_systems, self.file_systems_unavailable)
        return spec

    # ------------------------------------------------------------------ the API operation

    async def invoke(self, ctx: Caller, params: dict[str, Any]) -> dict[str, Any]:
        if self.tracing is not None:
            from lambdastack.observe.tracing.api import traced_invoke

            return await traced_invoke(self, self.tracing, ctx, params)
        return await self.invoke_as(ctx, params, getattr(ctx, "trace", None))

    async def invoke_as(self, ctx: Caller, params: dict[str, Any], trace: TraceHeader | None,
                        decided: Callable[[Target, TraceHeader | None], TraceHeader | None] | None = None,
                        ) -> dict[str, Any]:
        """Invoke within the trace `trace` (the caller's); `decided`, when tracing, starts the
        API request's span once the function is known and gives the trace to carry on."""
        invocation_type = params.get("InvocationType") or "RequestResponse"
        payload: bytes = params.get("Payload") or b""
        if not payload.strip():
            payload = b"{}"
        if invocation_type == "Event" and len(payload) > EVENT_PAYLOAD_LIMIT:
            raise errors.RequestEntityTooLarge(  # AWS's words for an Event over its limit
                f"{len(payload)} byte payload is too large for the Event invocation type"
                f" (limit {EVENT_PAYLOAD_LIMIT} bytes)"
            )
        target = self.resolver.resolve(params["FunctionName"], params.get("Qualifier"), ctx.account, ctx.region)
        self._check_state(target)
        check_json(payload)
        client_context = self._client_context(params.get("ClientContext"))
        if invocation_type == "DryRun":
            return {"StatusCode": 204, "ExecutedVersion": target.executed_version}
        if decided is not None:
            trace = decided(target, trace)
        if invocation_type == "Event":
            event = QueuedEvent(
                request_id=ctx.request_id, account=ctx.account, region=ctx.region,
                function_name=target.version.function_name, qualifier=_invoked_qualifier(target), payload=payload,
                extra=self._queued_trace(target, trace),
            )
            await self.queue.put(event)
            self.on_enqueued(event)
            if self.recorder is not None:
                self.recorder.event(ASYNC_RECEIVED, ctx.account, ctx.region, event.function_name,
                                    _resource(event.function_name, event.qualifier))
            return {"StatusCode": 202}
        outcome = await self.run(target, ctx.request_id, payload, client_context, trace=trace)
        result: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": target.executed_version,
            "Payload": outcome.payload,
        }
        if outcome.function_error:
            result["FunctionError"] = outcome.function_error
        if params.get("LogType") == "Tail":
            result["LogResult"] = base64.b64encode(outcome.log[-LOG_TAIL_BYTES:]).decode()
        return result

    async def invoke_with_response_stream(self, ctx: Caller, params: dict[str, Any]) -> dict[str, Any]:
        """InvokeWithResponseStream: the result's `EventStream` yields events as the function streams.

        Everything that can fail before the function's first byte (a missing function, a bad
        payload, a throttle) fails the request as Invoke would.
        """
        payload: bytes = params.get("Payload") or b""
        if not payload.strip():
            payload = b"{}"
        target = self.resolver.resolve(params["FunctionName"], params.get("Qualifier"), ctx.account, ctx.region)
        self._check_state(target)
        check_json(payload)
        client_context = self._client_context(params.get("ClientContext"))
        if params.get("InvocationType") == "DryRun":
            return {"StatusCode": 204, "ExecutedVersion": target.executed_version}
        relay = StreamRelay()
        trace: TraceHeader | None = getattr(ctx, "trace", None)
        finished: Callable[[asyncio.Future[InvokeOutcome]], None] | None = None
        if self.tracing is not None:
            from lambdastack.observe.tracing.api import traced_stream

            trace, finished = traced_stream(self, self.tracing, ctx, target, trace)
        invocation = asyncio.ensure_future(self.run(target, ctx.request_id, payload, client_context, sink=relay,
                                                    trace=trace))
        if finished is not None:
            invocation.add_done_callback(finished)
        content_type = await relay.head(invocation)
        return {
            "StatusCode": 200,
            "ExecutedVersion": target.executed_version,
            "ResponseStreamContentType": content_type,
            "EventStream": relay.events(invocation, log_tail=params.get("LogType") == "Tail"),
        }

    async def run(
        self, target: Target, request_id: str, payload: bytes, client_context: str | None = None,
        sink: ResponseSink | None = None, trace: TraceHeader | None = None,
    ) -> InvokeOutcome:
        """Run the function once, in the trace `trace` (an upstream one, or None: a trace of its own)."""
        spec = self.spec(target.version)
        record = target.version
        recorder = self.recorder
        sampled = self.sampler.decide(tracing_mode(record.config), trace.sampled if trace is not None else None)
        try:
            if sampled and self.tracing is not None:
                from lambdastack.observe.tracing.api import traced_run

                outcome = await traced_run(self, self.tracing, spec, target, request_id, payload, client_context,
                                           sink, trace)
            else:
                inv = Invocation(
                    request_id=request_id, payload=payload, invoked_arn=target.invoked_arn,
                    client_context=client_context, trace_id=untraced_header(trace, sampled), sink=sink,
                )
                outcome = await self.place(spec, inv)
        except errors.TooManyRequests:
            if recorder is not None:
                recorder.throttle(record.account, record.region, record.function_name,
                                  _resource(record.function_name, _invoked_qualifier(target)), record.version)
            raise
        # This invocation has left: the ones still running, and itself.
        concurrency = self.admission.in_flight(record.account, record.region, record.function_name) + 1
        self.metrics.record(
            (record.account, record.region, record.function_name, record.version),
            outcome.duration_ms,
            outcome.function_error is not None,
        )
        if self.usage is not None:
            self.usage.record(usage_key(spec), outcome.billed_ms, outcome.init_duration_ms, outcome.provisioned)
        if recorder is not None:
            recorder.invocation(record.account, record.region, record.function_name,
                                _resource(record.function_name, _invoked_qualifier(target)), record.version,
                                outcome.duration_ms, outcome.function_error is not None, concurrency,
                                outcome.init_duration_ms is not None)
        return outcome

    async def place(self, spec: EnvironmentSpec, inv: Invocation, admitted: Callable[[], None] | None = None,
                    ) -> InvokeOutcome:
        """Admit the invocation (or refuse it: TooManyRequestsException), then run it in an environment."""
        ticket = self.admission.enter(spec.account, spec.region, spec.function_name)
        if admitted is not None:
            admitted()
        try:
            return await self.placement.invoke(spec, inv)
        except EnvironmentStartError as e:
            raise errors.ServiceError(str(e))
        finally:
            self.admission.leave(ticket)

    def _queued_trace(self, target: Target, trace: TraceHeader | None) -> str:
        """The event's state in the queue, with the trace it belongs to and its sampling decision."""
        if trace is None or trace.sampled is None:
            from lambdastack.observe.tracing.header import new_root

            upstream = trace.sampled if trace is not None else None
            sampled = self.sampler.decide(tracing_mode(target.version.config), upstream)
            trace = TraceHeader(trace.root if trace is not None else new_root(),
                                trace.parent if trace is not None else None, sampled)
        return orjson.dumps({"trace": trace.format()}).decode()

    @staticmethod
    def _check_state(target: Target) -> None:
        config = target.version.config
        state = config.get("State") or "Active"
        if state == "Pending" and (config.get("SnapStart") or {}).get("OptimizationStatus") == "On":
            raise errors.SnapStartNotReady(
                "Lambda is initializing your function. You can invoke the function when the function state "
                "becomes Active."
            )
        if state != "Active":
            raise errors.ResourceConflict(
                "The operation cannot be performed at this time. The function is currently in the following "
                f"state: {state}"
            )

    @staticmethod
    def _client_context(value: str | None) -> str | None:
        if not value:
            return None
        if len(value) > CLIENT_CONTEXT_LIMIT:
            raise errors.InvalidParameterValue(
                f"Client context must be smaller than {CLIENT_CONTEXT_LIMIT} bytes once encoded in base64"
            )
        try:
            decoded = base64.b64decode(value, validate=True)
            json.loads(decoded)
        except (binascii.Error, ValueError):
            raise errors.InvalidParameterValue("Client context must be a valid Base64-encoded JSON object.")
        return decoded.decode()


def _invoked_qualifier(target: Target) -> str | None:
    """The qualifier the caller named (an alias stays an alias: its settings apply to the event)."""
    parts = target.invoked_arn.split(":")
    return parts[7] if len(parts) > 7 else None


def _resource(function_name: str, qualifier: str | None) -> str | None:
    """The `Resource` dimension of a qualified invocation: `function:alias` or `function:version`."""
    return f"{function_name}:{qualifier}" if qualifier else None
