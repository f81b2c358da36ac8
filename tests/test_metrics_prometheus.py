"""`GET /metrics` (and `/_lambdastack/metrics`) in Prometheus' exposition format, read with
prometheus_client's own parser: per-version counters and the duration histogram counted from
the invocations the test makes, and the platform's gauges. A Function URL's own `/metrics`
path still reaches its function."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import Server, create_function, invoke, unique
from prometheus_client.parser import text_string_to_metric_families
from test_function_urls import call, public_url
from test_metrics_cloudwatch import FAILING, durations

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server, path: str = "/metrics") -> tuple[dict[str, str], Samples]:
    """The families' types, and every sample by (name, labels)."""
    answer = requests.get(server.url + path, timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def test_counters_and_histograms_per_version(server: Server, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("prom"))
    logs = [invoke(plain_lam, name, {"fail": i >= 4}, LogType="Tail").log for i in range(5)]
    plain_lam.publish_version(FunctionName=name)
    logs.append(invoke(plain_lam, name, {}, Qualifier="1", LogType="Tail").log)
    plain_lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for _ in range(2):
        with pytest.raises(ClientError):
            plain_lam.invoke(FunctionName=name, Payload=b"{}")
    plain_lam.delete_function_concurrency(FunctionName=name)

    types, samples = scrape(server)
    assert types["lambdastack_invocations"] == "counter" and types["lambdastack_duration_seconds"] == "histogram"
    latest = (("account", "000000000000"), ("function_name", name), ("region", "us-east-1"), ("version", "$LATEST"))
    one = tuple(sorted({**dict(latest), "version": "1"}.items()))
    assert samples[("lambdastack_invocations_total", latest)] == 5
    assert samples[("lambdastack_errors_total", latest)] == 1
    assert samples[("lambdastack_throttles_total", latest)] == 2
    assert samples[("lambdastack_invocations_total", one)] == 1
    assert samples[("lambdastack_cold_starts_total", one)] == 1
    assert 1 <= samples[("lambdastack_cold_starts_total", latest)] <= 5
    assert samples[("lambdastack_duration_seconds_count", latest)] == 5
    buckets = sorted((float(dict(labels)["le"]), value) for (sample, labels), value in samples.items()
                     if sample == "lambdastack_duration_seconds_bucket" and dict(labels)["version"] == "$LATEST"
                     and dict(labels)["function_name"] == name)
    assert buckets[-1] == (float("inf"), 5)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    reported = durations(logs[:5])
    assert samples[("lambdastack_duration_seconds_sum", latest)] == pytest.approx(sum(reported) / 1000, abs=1e-4)
    # The same text at lambdastack's own path.
    assert scrape(server, "/_lambdastack/metrics")[1][("lambdastack_invocations_total", latest)] == 5


def test_platform_gauges(server: Server, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("promenv"))
    invoke(plain_lam, name, {})
    types, samples = scrape(server)
    assert types["lambdastack_environments"] == "gauge"
    states = {dict(labels)["state"]: value for (sample, labels), value in samples.items()
              if sample == "lambdastack_environments"}
    assert set(states) == {"starting", "idle", "busy", "dead"} and states["idle"] >= 1
    assert samples[("lambdastack_memory_budget_bytes", ())] > 0
    # The warm environment (and the pre-built ones) are charged what they use: more than nothing, within the budget.
    committed = samples[("lambdastack_memory_committed_bytes", ())]
    assert 0 < committed <= samples[("lambdastack_memory_budget_bytes", ())]
    assert ("lambdastack_prebuilt_environments", ()) in samples
    assert types["lambdastack_async_queue_depth"] == "gauge"
    assert types["lambdastack_async_oldest_event_age_seconds"] == "gauge"


def test_async_queue_depth_and_age(server: Server, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("promq"))
    plain_lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)  # events wait
    for _ in range(3):
        assert plain_lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    labels = (("account", "000000000000"), ("function_name", name), ("region", "us-east-1"))
    samples = scrape(server)[1]
    assert samples[("lambdastack_async_queue_depth", labels)] == 3
    assert samples[("lambdastack_async_oldest_event_age_seconds", labels)] >= 0
    plain_lam.delete_function(FunctionName=name)


def test_a_function_urls_own_metrics_path_reaches_the_function(server: Server, lam: Any) -> None:
    name = create_function(lam, "def handler(event, context):\n    return {'statusCode': 200, 'body': "
                                "'mine:' + event['rawPath']}\n", name=unique("promurl"))
    url = public_url(lam, name)
    answer = call(server, url, "/metrics")
    assert answer.status_code == 200 and answer.text == "mine:/metrics"


def test_only_get_and_head(server: Server) -> None:
    assert requests.post(server.url + "/metrics", timeout=10).status_code == 405
    head = requests.head(server.url + "/metrics", timeout=10)
    assert head.status_code == 200 and head.content == b""
