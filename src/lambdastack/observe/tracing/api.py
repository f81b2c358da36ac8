"""The traced forms of Invoke and of one run of a function: what the invocation path calls,
only when tracing is on, so that tracing off adds no work to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdastack import errors
from lambdastack.observe.tracing.header import TraceHeader
from lambdastack.observe.tracing.sampling import tracing_mode
from lambdastack.observe.tracing.spans import InvocationSpans, api_span, decided
from lambdastack.observe.tracing.tracer import Span, Tracing
from lambdastack.worker.spec import EnvironmentSpec, Invocation, InvokeOutcome

if TYPE_CHECKING:
    from lambdastack.invoke.resolver import Target
    from lambdastack.invoke.service import Caller, InvokeService
    from lambdastack.worker.streaming import ResponseSink


async def traced_invoke(service: InvokeService, tracing: Tracing, ctx: Caller, params: dict[str, Any],
                        ) -> dict[str, Any]:
    """Invoke, with the span of the API request once the function (and so its TracingConfig) is known."""
    start_ns = time.time_ns()
    spans: list[Span] = []

    def decide(target: Target, upstream: TraceHeader | None) -> TraceHeader:
        config = target.version.config
        sampled = service.sampler.decide(tracing_mode(config), upstream.sampled if upstream is not None else None)
        if not sampled:
            return decided(upstream, False)
        span = api_span(tracing, "Invoke", ctx.request_id, target.version.function_name, upstream, start_ns)
        span.set_attribute("aws.lambda.invocation_type", params.get("InvocationType") or "RequestResponse")
        spans.append(span)
        return tracing.header(span)

    try:
        result = await service.invoke_as(ctx, params, getattr(ctx, "trace", None), decide)
        for span in spans:
            span.set_attribute("http.response.status_code", result.get("StatusCode", 200))
        return result
    except errors.LambdaError as e:
        for span in spans:
            tracing.fail(span, e.code)
        raise
    finally:
        for span in spans:
            span.end()


def traced_stream(service: InvokeService, tracing: Tracing, ctx: Caller, target: Target,
                  upstream: TraceHeader | None,
                  ) -> tuple[TraceHeader, Callable[[asyncio.Future[InvokeOutcome]], None] | None]:
    """InvokeWithResponseStream's span: from the request until the function's stream ends."""
    config = target.version.config
    sampled = service.sampler.decide(tracing_mode(config), upstream.sampled if upstream is not None else None)
    if not sampled:
        return decided(upstream, False), None
    span = api_span(tracing, "InvokeWithResponseStream", ctx.request_id, target.version.function_name, upstream,
                    time.time_ns())

    def finished(invocation: asyncio.Future[InvokeOutcome]) -> None:
        error = invocation.exception() if not invocation.cancelled() else asyncio.CancelledError()
        if error is not None:
            tracing.fail(span, error.code if isinstance(error, errors.LambdaError) else type(error).__name__)
        span.end()

    return tracing.header(span), finished


async def traced_run(service: InvokeService, tracing: Tracing, spec: EnvironmentSpec, target: Target,
                     request_id: str, payload: bytes, client_context: str | None, sink: ResponseSink | None,
                     trace: TraceHeader | None) -> InvokeOutcome:
    """One run of the function, its span the Parent in the trace header the function sees."""
    spans = InvocationSpans(tracing, trace, request_id, spec.function_name, target.executed_version,
                            target.invoked_arn, spec.memory_mb)
    inv = Invocation(request_id=request_id, payload=payload, invoked_arn=target.invoked_arn,
                     client_context=client_context, trace_id=spans.header, sink=sink)
    start_ns = time.time_ns()
    admitted = False

    def on_admitted() -> None:
        nonlocal admitted
        admitted = True
        spans.admission(start_ns)

    try:
        outcome = await service.place(spec, inv, on_admitted)
    except BaseException as e:
        reason = e.code if isinstance(e, errors.LambdaError) else type(e).__name__
        if not admitted:
            spans.admission(start_ns, error=reason)
        spans.finish(None, reason)
        raise
    spans.finish(outcome)
    return outcome
