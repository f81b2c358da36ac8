"""Traces: the X-Ray trace header every invocation carries, Lambda's sampling decision, and
(when an OTLP endpoint is configured) OpenTelemetry spans of the platform's steps."""

from lambdastack.observe.tracing.header import TraceHeader, incoming, untraced_header
from lambdastack.observe.tracing.sampling import Sampler

__all__ = ["Sampler", "TraceHeader", "incoming", "untraced_header"]
