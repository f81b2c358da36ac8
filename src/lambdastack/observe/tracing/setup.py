"""Tracing is on when the server's environment names an OTLP endpoint, as the OpenTelemetry SDKs
decide (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`), and not
disabled (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdastack.observe.tracing.tracer import Tracing


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def tracing_from_environment(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The exporter of the platform's spans; None (and no OpenTelemetry import) when tracing is off."""
    if not tracing_enabled(environ):
        return None
    from lambdastack.observe.tracing.tracer import Tracing

    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    logging.getLogger("lambdastack.tracing").info("tracing: spans exported over OTLP/HTTP to %s", endpoint)
    return Tracing.create(environ)
