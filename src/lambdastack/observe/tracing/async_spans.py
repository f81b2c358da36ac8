"""Spans of the async path (the queue's wait, a destination's delivery); imports no
OpenTelemetry, so that the async invoker may call in whether tracing is on or off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambdastack.observe.tracing.header import TraceHeader, parse_xray

if TYPE_CHECKING:
    from lambdastack.observe.tracing.tracer import Tracing


def queued_trace(extra_trace: str | None) -> TraceHeader | None:
    """The trace an async event was queued in."""
    return parse_xray(extra_trace) if extra_trace else None


def queue_wait(tracing: Tracing | None, trace: TraceHeader | None, request_id: str, received_at: float) -> None:
    """The time an async event waited in the queue before its first run."""
    if tracing is None or trace is None or not trace.sampled:
        return
    span = tracing.start("Queue", trace, attributes={"aws.request_id": request_id, "faas.invocation_id": request_id},
                         start_ns=int(received_at * 1e9))
    span.end()


def traced_delivery(tracing: Tracing | None, trace: TraceHeader | None, request_id: str, kind: str, target: str,
             start_ns: int, error: str | None) -> None:
    """The delivery of an async invocation's record to its destination (or dead-letter queue)."""
    if tracing is None or trace is None or not trace.sampled:
        return
    span = tracing.start("Destination" if kind == "destination" else "Dead-letter queue", trace, attributes={
        "aws.request_id": request_id, "aws.lambda.destination": target}, start_ns=start_ns)
    if error is not None:
        tracing.fail(span, error)
    span.end()
