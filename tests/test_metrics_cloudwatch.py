"""CloudWatch metrics at the same endpoint (`boto3.client("cloudwatch")`, `aws cloudwatch`): Lambda's
`AWS/Lambda` metrics counted from the invocations each test makes (successes, errors,
throttles), durations that agree with the REPORT lines, the dimensions Lambda publishes,
GetMetricData's paging, CloudWatch's errors, embedded-format custom metrics, and data that
survives a restart. Every response is checked against botocore's output shapes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapecheck
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function, invoke, unique, wait_for

AWS = Path(sys.executable).with_name("aws")
REPORT_DURATION = re.compile(r"REPORT RequestId: \S+\s+Duration: ([0-9.]+) ms")

FAILING = """import json
def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    for line in event.get("print", []):
        print(line)
    return "ok"
"""


@pytest.fixture(scope="module")
def cloudwatch(server: Server) -> Iterator[Any]:
    client = client_for(server.url, "cloudwatch")
    with shapecheck.checked(client):
        yield client


def window() -> dict[str, Any]:
    now = time.time()
    return {"StartTime": now - 600, "EndTime": now + 60}


def total(cloudwatch: Any, name: str, dims: dict[str, str], stat: str = "Sum", period: int = 60,
          namespace: str = "AWS/Lambda") -> float:
    """A statistic over the whole window: the datapoints' sum (Sum, SampleCount) or extreme."""
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        Period=period, Statistics=[stat], **window())["Datapoints"]
    values = [p[stat] for p in points]
    if stat == "Maximum":
        return max(values, default=0.0)
    if stat == "Minimum":
        return min(values, default=0.0)
    return float(sum(values))


def durations(logs: list[str]) -> list[float]:
    return [float(m) for log in logs for m in REPORT_DURATION.findall(log)]


def run_mix(plain_lam: Any, name: str, ok: int, failed: int, throttled: int) -> list[str]:
    """Invoke `ok` times successfully, `failed` times with an error, then `throttled` times with
    reserved concurrency 0; the logs (LogType=Tail) of those that ran."""
    logs = []
    for i in range(ok + failed):
        answer = invoke(plain_lam, name, {"fail": i >= ok}, LogType="Tail")
        assert (answer.function_error is not None) == (i >= ok)
        logs.append(answer.log)
    if throttled:
        plain_lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        for _ in range(throttled):
            with pytest.raises(ClientError) as caught:
                plain_lam.invoke(FunctionName=name, Payload=b"{}")
            assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
        plain_lam.delete_function_concurrency(FunctionName=name)
    return logs


def test_counts_and_durations_are_the_invocations_made(cloudwatch: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("cw"))
    logs = run_mix(plain_lam, name, ok=5, failed=2, throttled=3)
    fn = {"FunctionName": name}
    assert total(cloudwatch, "Invocations", fn) == 7
    assert total(cloudwatch, "Errors", fn) == 2
    assert total(cloudwatch, "Errors", fn, "SampleCount") == 7  # 0 for a success, as Lambda publishes it
    assert total(cloudwatch, "Throttles", fn) == 3
    assert total(cloudwatch, "Invocations", fn, period=1) == 7  # one-second resolution, the last hour
    assert total(cloudwatch, "Throttles", fn, period=5) == 3

    reported = durations(logs)
    assert len(reported) == 7
    assert total(cloudwatch, "Duration", fn, "SampleCount") == 7
    assert total(cloudwatch, "Duration", fn, "Sum") == pytest.approx(sum(reported), abs=0.01 * 7)
    assert total(cloudwatch, "Duration", fn, "Maximum") == pytest.approx(max(reported), abs=0.01)
    assert total(cloudwatch, "Duration", fn, "Minimum") == pytest.approx(min(reported), abs=0.01)
    assert total(cloudwatch, "ConcurrentExecutions", fn, "Maximum") == 1

    [point] = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Duration", Dimensions=[{"Name": "FunctionName", "Value": name}],
        Period=3600, Statistics=["Average"], ExtendedStatistics=["p50", "p99"], Unit="Milliseconds",
        StartTime=time.time() // 3600 * 3600 - 3600, EndTime=time.time() + 3600)["Datapoints"][-1:] or [None]
    assert point is not None and point["Unit"] == "Milliseconds"
    ordered = sorted(reported)
    assert point["ExtendedStatistics"]["p99"] == pytest.approx(ordered[-1], rel=0.02, abs=0.01)
    assert point["ExtendedStatistics"]["p50"] == pytest.approx(ordered[3], rel=0.02, abs=0.01)
    assert point["Average"] == pytest.approx(sum(reported) / 7, abs=0.01)
    # Another unit than the metric's matches nothing, as on CloudWatch.
    assert total_with_unit(cloudwatch, name, "Seconds") == []


def total_with_unit(cloudwatch: Any, name: str, unit: str) -> list[Any]:
    points: list[Any] = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda", MetricName="Duration", Dimensions=[{"Name": "FunctionName", "Value": name}],
        Period=60, Statistics=["Sum"], Unit=unit, **window())["Datapoints"]
    return points


def test_aliases_and_versions_have_their_resource_and_executed_version(cloudwatch: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("cwalias"))
    plain_lam.publish_version(FunctionName=name)
    plain_lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    for _ in range(3):
        assert invoke(plain_lam, name, {}, Qualifier="live").executed_version == "1"
    for _ in range(2):
        invoke(plain_lam, name, {}, Qualifier="1")
    invoke(plain_lam, name, {})
    assert total(cloudwatch, "Invocations", {"FunctionName": name}) == 6
    assert total(cloudwatch, "Invocations", {"FunctionName": name, "Resource": f"{name}:live"}) == 3
    assert total(cloudwatch, "Invocations", {"FunctionName": name, "Resource": f"{name}:1"}) == 2
    assert total(cloudwatch, "Invocations", {"FunctionName": name, "Resource": f"{name}:live",
                                             "ExecutedVersion": "1"}) == 3
    listed = cloudwatch.list_metrics(Namespace="AWS/Lambda", MetricName="Invocations",
                                     Dimensions=[{"Name": "FunctionName", "Value": name}])["Metrics"]
    assert sorted(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed) == [
        [("ExecutedVersion", "1"), ("FunctionName", name), ("Resource", f"{name}:live")],
        [("FunctionName", name)],
        [("FunctionName", name), ("Resource", f"{name}:1")],
        [("FunctionName", name), ("Resource", f"{name}:live")],
    ]
    names = {m["MetricName"] for m in cloudwatch.list_metrics(
        Namespace="AWS/Lambda", Dimensions=[{"Name": "FunctionName", "Value": name}])["Metrics"]}
    assert names == {"Invocations", "Errors", "Duration", "ConcurrentExecutions"}
    active = cloudwatch.list_metrics(Namespace="AWS/Lambda", RecentlyActive="PT3H",
                                     Dimensions=[{"Name": "Resource", "Value": f"{name}:1"}])["Metrics"]
    assert {m["MetricName"] for m in active} == names


def test_get_metric_data_pages_by_max_datapoints(cloudwatch: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("cwdata"))
    logs = []
    for i in range(4):
        if i:
            time.sleep(1.05)  # four distinct seconds: four one-second datapoints
        logs.append(invoke(plain_lam, name, {}, LogType="Tail").log)
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Invocations",
              "Dimensions": [{"Name": "FunctionName", "Value": name}]}
    queries = [
        {"Id": "calls", "MetricStat": {"Metric": metric, "Period": 1, "Stat": "Sum"}},
        {"Id": "slowest", "Label": "p99", "MetricStat": {
            "Metric": {**metric, "MetricName": "Duration"}, "Period": 60, "Stat": "p99"}},
        {"Id": "hidden", "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
    ]
    whole = cloudwatch.get_metric_data(MetricDataQueries=queries, ScanBy="TimestampAscending", **window())
    by_id = {r["Id"]: r for r in whole["MetricDataResults"]}
    assert set(by_id) == {"calls", "slowest"} and "NextToken" not in whole
    assert by_id["calls"]["Values"] == [1.0] * 4 and by_id["calls"]["StatusCode"] == "Complete"
    stamps = by_id["calls"]["Timestamps"]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert by_id["calls"]["Label"] == "Invocations" and by_id["slowest"]["Label"] == "p99"
    assert max(by_id["slowest"]["Values"]) == pytest.approx(max(durations(logs)), rel=0.02, abs=0.01)

    pages = list(cloudwatch.get_paginator("get_metric_data").paginate(
        MetricDataQueries=queries, MaxDatapoints=3, **window()))
    assert len(pages) >= 2
    calls = [v for p in pages for r in p["MetricDataResults"] if r["Id"] == "calls" for v in r["Values"]]
    stamps_desc = [t for p in pages for r in p["MetricDataResults"] if r["Id"] == "calls" for t in r["Timestamps"]]
    assert calls == [1.0] * 4 and stamps_desc == sorted(stamps_desc, reverse=True)
    assert pages[0]["MetricDataResults"][0]["StatusCode"] == "PartialData"


def test_async_events_received_aged_and_dropped(cloudwatch: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("cwasync"))
    plain_lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    for event in ({}, {}, {"fail": True}):
        answer = plain_lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
        assert answer["StatusCode"] == 202
    fn = {"FunctionName": name}
    # The failed event is not retried and has no destination: dropped, once all three ran.
    assert wait_for(lambda: total(cloudwatch, "AsyncEventsDropped", fn) == 1, timeout=30)
    assert wait_for(lambda: total(cloudwatch, "Invocations", fn) == 3, timeout=30)
    assert total(cloudwatch, "AsyncEventsReceived", fn) == 3
    assert total(cloudwatch, "Errors", fn) == 1
    assert total(cloudwatch, "AsyncEventAge", fn, "SampleCount") == 3
    assert 0 <= total(cloudwatch, "AsyncEventAge", fn, "Maximum") < 30_000


def error_of(call: Any, **params: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_bad_requests_get_cloudwatchs_errors(cloudwatch: Any) -> None:
    base = {"Namespace": "AWS/Lambda", "MetricName": "Invocations", **window()}
    assert error_of(cloudwatch.get_metric_statistics, Period=7, Statistics=["Sum"], **base) == (
        "InvalidParameterValue", 400)
    assert error_of(cloudwatch.get_metric_statistics, Period=60, **base) == ("MissingParameter", 400)
    assert error_of(cloudwatch.get_metric_statistics, Period=60, ExtendedStatistics=["p101"], **base) == (
        "InvalidParameterValue", 400)
    assert error_of(cloudwatch.get_metric_statistics, Period=1, Statistics=["Sum"], Namespace="AWS/Lambda",
                    MetricName="Invocations", StartTime=time.time() - 86400, EndTime=time.time()) == (
        "InvalidParameterCombination", 400)
    now = time.time()
    assert error_of(cloudwatch.get_metric_statistics, Period=60, Statistics=["Sum"], Namespace="AWS/Lambda",
                    MetricName="Invocations", StartTime=now, EndTime=now - 60) == ("InvalidParameterValue", 400)
    query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": "AWS/Lambda", "MetricName": "Errors"},
                                       "Period": 60, "Stat": "Sum"}}
    assert error_of(cloudwatch.get_metric_data, MetricDataQueries=[query], NextToken="nope", **window()) == (
        "InvalidNextToken", 400)
    assert error_of(cloudwatch.get_metric_data, MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}],
                    **window())[0] == "InvalidParameterValue"
    assert error_of(cloudwatch.list_metrics, NextToken="%%%")[0] == "InvalidNextToken"


def test_embedded_metric_format_lines_become_custom_metrics(cloudwatch: Any, plain_lam: Any) -> None:
    namespace = unique("Shop")
    metrics = Metrics(namespace=namespace, service="cart")
    metrics.add_metric(name="Orders", unit=MetricUnit.Count, value=2)
    metrics.add_metric(name="Orders", unit=MetricUnit.Count, value=3)
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=12.5)
    line = json.dumps(metrics.serialize_metric_set())  # exactly what powertools prints at the end of a handler
    metrics.clear_metrics()
    name = create_function(plain_lam, FAILING, name=unique("cwemf"))
    invoke(plain_lam, name, {"print": [line, '{"_aws": "not a metric line"}', "plain text with \"_aws\""]})
    invoke(plain_lam, name, {"print": [line]})
    listed = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert sorted((m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed) == [
        ("Latency", "cart"), ("Orders", "cart")]
    service = {"service": "cart"}
    assert total(cloudwatch, "Orders", service, "Sum", namespace=namespace) == 10
    assert total(cloudwatch, "Orders", service, "SampleCount", namespace=namespace) == 4
    assert total(cloudwatch, "Latency", service, "Maximum", namespace=namespace) == 12.5
    result = cloudwatch.get_metric_data(MetricDataQueries=[{"Id": "orders", "MetricStat": {
        "Metric": {"Namespace": namespace, "MetricName": "Orders", "Dimensions": [{"Name": "service",
                                                                                  "Value": "cart"}]},
        "Period": 60, "Stat": "Sum", "Unit": "Count"}}], **window())
    assert sum(result["MetricDataResults"][0]["Values"]) == 10


def aws_cli(server: Server, *args: str) -> Any:
    env = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1",
           "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    done = subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "cloudwatch", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_aws_cli_reads_the_same_figures(server: Server, plain_lam: Any) -> None:
    name = create_function(plain_lam, FAILING, name=unique("cwcli"))
    run_mix(plain_lam, name, ok=3, failed=1, throttled=2)
    start, end = str(int(time.time() - 600)), str(int(time.time() + 60))
    dims = f"Name=FunctionName,Value={name}"

    def cli_sum(metric: str) -> float:
        answer = aws_cli(server, "get-metric-statistics", "--namespace", "AWS/Lambda", "--metric-name", metric,
                         "--dimensions", dims, "--start-time", start, "--end-time", end, "--period", "60",
                         "--statistics", "Sum")
        return float(sum(p["Sum"] for p in answer["Datapoints"]))

    assert (cli_sum("Invocations"), cli_sum("Errors"), cli_sum("Throttles")) == (4, 1, 2)
    listed = aws_cli(server, "list-metrics", "--namespace", "AWS/Lambda", "--dimensions", dims)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"Invocations", "Errors", "Duration", "ConcurrentExecutions",
                                                 "Throttles"}
    queries = json.dumps([{"Id": "calls", "MetricStat": {"Metric": {
        "Namespace": "AWS/Lambda", "MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName",
                                                                                "Value": name}]},
        "Period": 60, "Stat": "Sum"}}])
    data = aws_cli(server, "get-metric-data", "--metric-data-queries", queries, "--start-time", start,
                   "--end-time", end)
    assert sum(data["MetricDataResults"][0]["Values"]) == 4


def test_metrics_survive_a_restart_and_a_crash(private_server: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = private_server(data_dir=data_dir)
    lam = server.client()
    name = create_function(lam, FAILING, name=unique("cwdur"))
    run_mix(lam, name, ok=3, failed=1, throttled=0)
    server.stop()
    server = private_server(data_dir=data_dir)
    cloudwatch = server.client("cloudwatch")
    fn = {"FunctionName": name}
    assert (total(cloudwatch, "Invocations", fn), total(cloudwatch, "Errors", fn)) == (4, 1)
    assert total(cloudwatch, "Invocations", fn, period=1) == 4
    invoke(server.client(), name, {})
    assert total(cloudwatch, "Invocations", fn) == 5  # what a query reads is on disk
    server.kill()
    server = private_server(data_dir=data_dir)
    assert total(server.client("cloudwatch"), "Invocations", fn) == 5


def test_iterator_age_of_a_kinesis_mapping(moto_backed_server: Server, moto_url: str) -> None:
    import boto3
    kinesis = boto3.client("kinesis", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
    stream_name = unique("cwstream")
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]["StreamARN"]
    for n in range(3):
        kinesis.put_record(StreamName=stream_name, PartitionKey="k", Data=f"r{n}".encode())
    lam = moto_backed_server.client()
    cloudwatch = moto_backed_server.client("cloudwatch")
    name = create_function(lam, FAILING, name=unique("cwiter"))
    put_at = time.time()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=10)
    fn = {"FunctionName": name}
    assert wait_for(lambda: total(cloudwatch, "Invocations", fn) >= 1, timeout=60)
    # One age per batch (recorded as the batch is invoked, the count once it has run).
    assert wait_for(lambda: total(cloudwatch, "IteratorAge", fn, "SampleCount") == total(
        cloudwatch, "Invocations", fn), timeout=30)
    # The age of the batch's last record when it was invoked: at least 0, at most the time since it was put.
    assert 0 <= total(cloudwatch, "IteratorAge", fn, "Maximum") <= (time.time() - put_at + 1) * 1000
