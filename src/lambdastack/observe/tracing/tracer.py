"""The platform's OpenTelemetry spans, exported over OTLP/HTTP (protobuf) by a BatchSpanProcessor
(a thread of its own: exports never run on the event loop).

Imported only when an OTLP endpoint is configured (see `setup.py`): with tracing off, no
OpenTelemetry object exists. Trace ids are X-Ray compatible (their first 32 bits are the
epoch second), so every trace id maps to an X-Ray root and back.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from lambdastack.observe.tracing.header import TraceHeader, root_of

Span = trace.Span
SERVER = SpanKind.SERVER
INTERNAL = SpanKind.INTERNAL


class _XRayIds(RandomIdGenerator):
    """Trace ids X-Ray accepts (epoch second, then 96 random bits); or the one `forced` names:
    an upstream X-Ray root without a parent starts a trace of that root."""

    forced: int | None = None

    def generate_trace_id(self) -> int:
        if self.forced is not None:
            trace_id, self.forced = self.forced, None
            return trace_id
        return (int(time.time()) << 96) | random.getrandbits(96)


class Tracing:
    def __init__(self, provider: TracerProvider, ids: _XRayIds) -> None:
        self.provider = provider
        self.ids = ids
        self.tracer = provider.get_tracer("lambdastack")

    @classmethod
    def create(cls, environ: Mapping[str, str] = os.environ) -> Tracing:
        attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "lambdastack"}
        ids = _XRayIds()
        provider = TracerProvider(resource=Resource.create(attributes), id_generator=ids, sampler=ALWAYS_ON)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # the exporter reads OTEL_EXPORTER_*
        return cls(provider, ids)

    def start(self, name: str, upstream: TraceHeader | None, kind: SpanKind = INTERNAL,
              attributes: Mapping[str, Any] | None = None, start_ns: int | None = None) -> Span:
        """A span of the trace `upstream` names (a child of its Parent), or of a new trace."""
        context = None
        if upstream is not None and upstream.parent:
            parent = SpanContext(upstream.trace_id, int(upstream.parent, 16), is_remote=True,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))
            context = trace.set_span_in_context(NonRecordingSpan(parent))
        elif upstream is not None:
            self.ids.forced = upstream.trace_id
        return self.tracer.start_span(name, context, kind, attributes, start_time=start_ns)

    def start_child(self, name: str, parent: Span, attributes: Mapping[str, Any] | None = None,
                    start_ns: int | None = None) -> Span:
        return self.tracer.start_span(name, trace.set_span_in_context(parent), INTERNAL, attributes,
                                      start_time=start_ns)

    def record(self, name: str, parent: Span, start_ns: int, end_ns: int,
               attributes: Mapping[str, Any] | None = None, error: str | None = None) -> None:
        """A finished child span, from times measured before."""
        span = self.start_child(name, parent, attributes, start_ns)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_ns)

    @staticmethod
    def header(span: Span) -> TraceHeader:
        """The header naming `span` as the parent of what comes next (the function's own spans)."""
        context = span.get_span_context()
        return TraceHeader(root_of(context.trace_id), f"{context.span_id:016x}", True)

    @staticmethod
    def fail(span: Span, error: str) -> None:
        span.set_status(Status(StatusCode.ERROR, error))

    def shutdown(self) -> None:
        """Export what is still queued, then stop the exporting thread."""
        self.provider.shutdown()
