"""The spans of one invocation, from measured times: the API request, admission, the function
(with its cold start's Initialization and the Invocation), the async queue's wait and the
delivery of a destination's record. Kept apart from the invocation path, which only calls in."""

from __future__ import annotations

import time
from typing import Any

from lambdastack.observe.tracing.header import TraceHeader, new_root
from lambdastack.observe.tracing.tracer import SERVER, Span, Tracing
from lambdastack.worker.spec import InvokeOutcome


def decided(upstream: TraceHeader | None, sampled: bool) -> TraceHeader:
    """The trace an invocation carries on (into the async queue, say) once its sampling is decided."""
    if upstream is None:
        return TraceHeader(new_root(), None, sampled)
    return TraceHeader(upstream.root, upstream.parent, sampled)


def api_span(tracing: Tracing, operation: str, request_id: str, function_name: str, upstream: TraceHeader | None,
             start_ns: int) -> Span:
    return tracing.start(f"Lambda/{operation}", upstream, SERVER, {
        "rpc.system": "aws-api", "rpc.service": "Lambda", "rpc.method": operation,
        "aws.request_id": request_id, "faas.invoked_name": function_name,
    }, start_ns)


class InvocationSpans:
    """The span of one run of a function, whose id the function sees as its trace header's Parent."""

    def __init__(self, tracing: Tracing, upstream: TraceHeader | None, request_id: str, function_name: str,
                 executed_version: str, invoked_arn: str, memory_mb: int) -> None:
        self.tracing = tracing
        self.start_ns = time.time_ns()
        self.span = tracing.start(function_name, upstream, attributes={
            "faas.invocation_id": request_id, "aws.request_id": request_id, "faas.name": function_name,
            "faas.version": executed_version, "cloud.resource_id": invoked_arn,
            "faas.max_memory": memory_mb * 1_048_576,
        }, start_ns=self.start_ns)
        self.header = tracing.header(self.span).format()

    def admission(self, start_ns: int, error: str | None = None) -> None:
        self.tracing.record("Admission", self.span, start_ns, time.time_ns(), error=error)

    def finish(self, outcome: InvokeOutcome | None, error: str | None = None) -> None:
        end = time.time_ns()
        span = self.span
        if outcome is None:
            self.tracing.fail(span, error or "the invocation failed")
            span.end(end)
            return
        cold = outcome.init_duration_ms is not None
        span.set_attribute("faas.coldstart", cold)
        invoked = max(self.start_ns, end - int(outcome.duration_ms * 1e6))
        if outcome.init_duration_ms is not None:
            init_start = max(self.start_ns, invoked - int(outcome.init_duration_ms * 1e6))
            self.tracing.record("Initialization", span, init_start, invoked,
                                {"aws.lambda.init_duration_ms": outcome.init_duration_ms})
        attributes: dict[str, Any] = {
            "aws.lambda.duration_ms": outcome.duration_ms, "aws.lambda.billed_duration_ms": outcome.billed_ms,
            "aws.lambda.max_memory_used_mb": outcome.max_memory_used_mb,
        }
        if outcome.function_error:
            attributes["aws.lambda.function_error"] = outcome.function_error
            if outcome.error_type:
                attributes["error.type"] = outcome.error_type
        self.tracing.record("Invocation", span, invoked, end, attributes, error=outcome.function_error)
        if outcome.function_error:
            self.tracing.fail(span, outcome.function_error)
        span.end(end)
