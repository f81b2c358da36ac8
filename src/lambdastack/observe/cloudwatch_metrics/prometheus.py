"""`GET /metrics` (and `/_lambdastack/metrics`): Prometheus' text exposition format, written by
the official prometheus_client from a collector of this scrape's figures (a registry per
scrape, never the library's global one).

Per function version: invocations, errors, throttles and cold starts (counters since the
server started) and the duration histogram. The platform's own: environments by state, the
pre-built pool, async queue depth and oldest event age per function, and the memory budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from lambdastack.observe.cloudwatch_metrics.store import DURATION_BUCKETS, VersionTotals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
VERSION_LABELS = ["account", "region", "function_name", "version"]


@dataclass
class Scrape:
    """Everything one scrape reports, gathered before it is written."""

    totals: dict[tuple[str, str, str, str], VersionTotals]
    environments: dict[str, int] = field(default_factory=dict)  # state -> count
    prebuilt: int = 0
    memory_budget_mb: int = 0
    memory_committed_mb: int = 0
    # (account, region, function) -> (queue depth, oldest event's age in seconds or None)
    async_queues: dict[tuple[str, str, str], tuple[int, float | None]] = field(default_factory=dict)


class _Collector(Collector):
    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape

    def collect(self) -> Iterable[Metric]:
        s = self.scrape
        invocations = CounterMetricFamily("lambdastack_invocations", "Invocations that ran", labels=VERSION_LABELS)
        errors = CounterMetricFamily("lambdastack_errors", "Invocations that ended in an error", labels=VERSION_LABELS)
        throttles = CounterMetricFamily("lambdastack_throttles", "Invocations refused with TooManyRequestsException",
                                        labels=VERSION_LABELS)
        cold = CounterMetricFamily("lambdastack_cold_starts", "Invocations that started an environment",
                                   labels=VERSION_LABELS)
        duration = HistogramMetricFamily("lambdastack_duration_seconds", "Duration of invocations (as in REPORT)",
                                         labels=VERSION_LABELS)
        for key, t in sorted(s.totals.items()):
            labels = list(key)
            invocations.add_metric(labels, t.invocations)
            errors.add_metric(labels, t.errors)
            throttles.add_metric(labels, t.throttles)
            cold.add_metric(labels, t.cold_starts)
            cumulative, running = [], 0
            for bound, count in zip(DURATION_BUCKETS, t.buckets, strict=True):
                running += count
                cumulative.append((_bound(bound), running))
            cumulative.append(("+Inf", t.invocations))
            duration.add_metric(labels, cumulative, t.duration_sum_s)
        yield from (invocations, errors, throttles, cold, duration)

        states = GaugeMetricFamily("lambdastack_environments", "Execution environments by state", labels=["state"])
        for state in ("starting", "idle", "busy", "dead"):
            states.add_metric([state], s.environments.get(state, 0))
        yield states
        yield GaugeMetricFamily("lambdastack_prebuilt_environments", "Environments built ahead, ready for a function",
                                value=s.prebuilt)
        yield GaugeMetricFamily("lambdastack_memory_budget_bytes", "Memory that environments may commit in all",
                                value=s.memory_budget_mb << 20)
        yield GaugeMetricFamily("lambdastack_memory_committed_bytes", "MemorySize committed to live environments",
                                value=s.memory_committed_mb << 20)
        depth = GaugeMetricFamily("lambdastack_async_queue_depth", "Async events waiting or in flight",
                                  labels=["account", "region", "function_name"])
        age = GaugeMetricFamily("lambdastack_async_oldest_event_age_seconds", "Age of the oldest queued async event",
                                labels=["account", "region", "function_name"])
        for function, (count, oldest) in sorted(s.async_queues.items()):
            depth.add_metric(list(function), count)
            age.add_metric(list(function), oldest or 0.0)
        yield depth
        yield age


def _bound(seconds: float) -> str:
    return repr(seconds) if seconds != int(seconds) else f"{seconds:.1f}"


def exposition(scrape: Scrape) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(scrape))
    return generate_latest(registry)
