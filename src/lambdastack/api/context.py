"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass

from lambdastack.observe.tracing.header import TraceHeader


@dataclass
class RequestContext:
    request_id: str
    account: str
    region: str
    base_url: str
    access_key: str | None = None
    trace: TraceHeader | None = None  # the trace the request came in (X-Amzn-Trace-Id or traceparent)
