"""The embedded metric format: a JSON log line with `_aws.CloudWatchMetrics` (what
aws-lambda-powertools' Metrics and the aws-embedded-metrics libraries print) declares custom
metrics whose values are members of the same line.

    {"_aws": {"Timestamp": 1733400000000, "CloudWatchMetrics": [{"Namespace": "Shop",
      "Dimensions": [["service"]], "Metrics": [{"Name": "Orders", "Unit": "Count"}]}]},
     "service": "cart", "Orders": [1, 2]}

Only lines that start with `{` and hold `"_aws"` are parsed; a line that is not valid EMF
stays a plain log line, as on Lambda.
"""

from __future__ import annotations

from typing import Any

import orjson

from lambdastack.observe.cloudwatch_metrics.recorder import MetricsRecorder

MARK = b'"_aws"'
MAX_METRICS = 100
MAX_DIMENSIONS = 30
MAX_VALUES = 100


class EmbeddedMetrics:
    """The tap of the log store: lines of functions in, custom metrics out to the recorder."""

    def __init__(self, recorder: MetricsRecorder) -> None:
        self.recorder = recorder

    def __call__(self, account: str, region: str, function: str, data: bytes, at_ms: int) -> None:
        for line in data.split(b"\n"):
            line = line.strip()
            if line.startswith(b"{") and MARK in line:
                try:
                    document = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(document, dict):
                    self._record(account, region, document, at_ms)

    def _record(self, account: str, region: str, document: dict[str, Any], at_ms: int) -> None:
        meta = document.get("_aws")
        if not isinstance(meta, dict) or not isinstance(meta.get("CloudWatchMetrics"), list):
            return
        stamp = meta.get("Timestamp")
        at = (stamp if isinstance(stamp, int | float) and not isinstance(stamp, bool) else at_ms) / 1000.0
        for directive in meta["CloudWatchMetrics"][:MAX_METRICS]:
            if not isinstance(directive, dict):
                continue
            namespace = directive.get("Namespace")
            metrics = directive.get("Metrics")
            if not isinstance(namespace, str) or not namespace or namespace.startswith("AWS/") \
                    or not isinstance(metrics, list):
                continue
            dimension_sets = directive.get("Dimensions") or [[]]
            for names in dimension_sets if isinstance(dimension_sets, list) else ():
                dimensions = _dimensions(document, names)
                if dimensions is None:
                    continue
                for metric in metrics[:MAX_METRICS]:
                    self._metric(account, region, namespace, dimensions, metric, document, at)

    def _metric(self, account: str, region: str, namespace: str, dimensions: tuple[tuple[str, str], ...],
                metric: Any, document: dict[str, Any], at: float) -> None:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            return
        name = metric["Name"]
        raw = document.get(name)
        values = raw if isinstance(raw, list) else [raw]
        numbers = [float(v) for v in values[:MAX_VALUES] if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers:
            unit = metric.get("Unit") if isinstance(metric.get("Unit"), str) else "None"
            self.recorder.custom(account, region, namespace, name, dimensions, numbers, unit or "None", at)


def _dimensions(document: dict[str, Any], names: Any) -> tuple[tuple[str, str], ...] | None:
    """The dimension set's values from the line; None when one is missing (the set is skipped)."""
    if not isinstance(names, list) or len(names) > MAX_DIMENSIONS:
        return None
    pairs: list[tuple[str, str]] = []
    for name in names:
        value = document.get(name) if isinstance(name, str) else None
        if value is None or isinstance(value, dict | list):
            return None
        pairs.append((name, str(value)))
    return tuple(sorted(pairs))
