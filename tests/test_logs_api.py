"""CloudWatch Logs at the same endpoint (`boto3.client("logs")`, `aws logs`): every function's log
group and its streams as Lambda names them, GetLogEvents and FilterLogEvents with AWS's paging
and filter patterns, log groups created and deleted, retention that deletes events from disk.
Every response is checked against botocore's output shapes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import shapecheck
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function, stored_log, unique

from lambdastack.observe.cloudwatch_logs.service import DAY_MS, LogsService
from lambdastack.observe.logs import LogStore

AWS = Path(sys.executable).with_name("aws")
ACCOUNT, REGION = "000000000000", "us-east-1"
STREAM_NAME = re.compile(r"\d{4}/\d{2}/\d{2}/\[(\$LATEST|\d+)\][0-9a-f]{32}")

PRINTER = """import json, time
def handler(event, context):
    for i in range(event.get("lines", 0)):
        print(f"{event.get('tag', 'line')}-{i} plain")
        time.sleep(event.get("pause", 0))
    for record in event.get("json", []):
        print(json.dumps(record))
    return context.log_stream_name
"""


@pytest.fixture(scope="module")
def logs(server: Server) -> Iterator[Any]:
    client = client_for(server.url, "logs")
    with shapecheck.checked(client):
        yield client


def run(lam: Any, name: str, event: dict[str, Any], qualifier: str | None = None) -> str:
    """Invoke; the log stream the function saw in its context."""
    extra = {"Qualifier": qualifier} if qualifier else {}
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **extra)
    assert "FunctionError" not in answer
    stream: str = json.loads(answer["Payload"].read())
    return stream


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events]


def test_groups_and_streams_as_lambda_names_them(logs: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, PRINTER, name=unique("logs"))
    group = f"/aws/lambda/{name}"
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []  # not before it logs
    stream = run(plain_lam, name, {"lines": 2})
    assert STREAM_NAME.fullmatch(stream) and "[$LATEST]" in stream
    plain_lam.publish_version(FunctionName=name)
    versioned = run(plain_lam, name, {"lines": 1}, qualifier="1")
    assert STREAM_NAME.fullmatch(versioned) and "/[1]" in versioned

    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    assert {k: found[k] for k in ("logGroupName", "arn", "logGroupArn", "metricFilterCount")} == {
        "logGroupName": group, "arn": arn + ":*", "logGroupArn": arn, "metricFilterCount": 0}
    assert found["storedBytes"] > 0 and found["creationTime"] > 0 and "retentionInDays" not in found
    assert found["logGroupClass"] == "STANDARD" and found["deletionProtectionEnabled"] is False

    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert sorted([stream, versioned]) == [s["logStreamName"] for s in streams]
    for s in streams:
        assert s["arn"] == f"{arn}:log-stream:{s['logStreamName']}"
        assert s["creationTime"] <= s["firstEventTimestamp"] <= s["lastEventTimestamp"] <= s["lastIngestionTime"]
    assert [s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group, logStreamNamePrefix=versioned[:11] + "[1]")["logStreams"]] == [versioned]
    by_time = logs.describe_log_streams(logGroupIdentifier=arn, orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in by_time["logStreams"]] == [versioned, stream]
    first = logs.describe_log_streams(logGroupName=group, limit=1)
    rest = logs.describe_log_streams(logGroupName=group, limit=1, nextToken=first["nextToken"])
    assert [s["logStreamName"] for s in first["logStreams"] + rest["logStreams"]] == sorted([stream, versioned])
    assert "nextToken" not in rest


def test_log_groups_page_by_name(logs: Any, plain_lam: Any) -> None:
    prefix = unique("pages")
    names = [create_function(plain_lam, PRINTER, name=f"{prefix}-{i}") for i in range(3)]
    for name in names:
        run(plain_lam, name, {"lines": 1})
    seen: list[str] = []
    page = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}", limit=2)
    seen += [g["logGroupName"] for g in page["logGroups"]]
    page = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}", limit=2, nextToken=page["nextToken"])
    seen += [g["logGroupName"] for g in page["logGroups"]]
    assert "nextToken" not in page
    assert seen == [f"/aws/lambda/{name}" for name in names]
    [by_pattern] = logs.describe_log_groups(logGroupNamePattern=prefix.upper() + "-1")["logGroups"]
    assert by_pattern["logGroupName"] == f"/aws/lambda/{names[1]}"
    assert "storedBytes" not in by_pattern and "deletionProtectionEnabled" not in by_pattern  # as AWS answers
    assert error_of(logs.describe_log_groups, logGroupNamePrefix="/aws", logGroupNamePattern="x") == (
        "InvalidParameterException",
        "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
    paginated = [g["logGroupName"] for p in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=f"/aws/lambda/{prefix}", PaginationConfig={"PageSize": 1}) for g in p["logGroups"]]
    assert paginated == seen


def test_get_log_events_pages_forward_and_backward(logs: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, PRINTER, name=unique("events"))
    group = f"/aws/lambda/{name}"
    stream = run(plain_lam, name, {"lines": 10})
    every = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert len(every) == 13  # START, ten lines, END, REPORT
    assert every[0]["message"].startswith("START RequestId: ") and every[-1]["message"].startswith("REPORT ")
    assert messages(every[1:11]) == [f"line-{i} plain" for i in range(10)]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in every)

    # Forward from the head, three at a time; the end gives back the token it was given.
    got: list[dict[str, Any]] = []
    answer = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True, limit=3)
    while answer["events"]:
        got += answer["events"]
        token = answer["nextForwardToken"]
        answer = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3, nextToken=token)
    assert got == every
    assert answer["nextForwardToken"] == token and re.fullmatch(r"f/\d{56}/s", token)

    # By default the latest events; backward from there.
    latest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=4)
    assert latest["events"] == every[-4:]
    older = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=4,
                                nextToken=latest["nextBackwardToken"])
    assert older["events"] == every[-8:-4]
    rest = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=older["nextBackwardToken"])
    assert rest["events"] == every[:-8]
    done = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=rest["nextBackwardToken"])
    assert done["events"] == [] and done["nextBackwardToken"] == rest["nextBackwardToken"]
    again = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=done["nextForwardToken"])
    assert again["events"] == every

    # A time range: start inclusive, end exclusive.
    middle = every[5]["timestamp"]
    ranged = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=middle, endTime=middle + 1,
                                 startFromHead=True)["events"]
    assert ranged == [e for e in every if e["timestamp"] == middle]

    assert error_of(logs.get_log_events, logGroupName=group, logStreamName="2020/01/01/[$LATEST]nothing") == (
        "ResourceNotFoundException", "The specified log stream does not exist.")
    assert error_of(logs.get_log_events, logGroupName="/aws/lambda/no-such-function", logStreamName=stream) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    assert error_of(logs.get_log_events, logGroupName=group, logStreamName=stream, nextToken="nonsense") == (
        "InvalidParameterException", "The specified nextToken is invalid.")
    assert error_of(logs.get_log_events, logGroupName=group, logStreamName=stream, limit=10001) == (
        "InvalidParameterException", "1 validation error detected: Value '10001' at 'limit' failed to satisfy "
        "constraint: Member must have value less than or equal to 10000")
    assert error_of(logs.get_log_events, logGroupName=group, logGroupIdentifier=group, logStreamName=stream) == (
        "ValidationException", "LogGroup name and LogGroup ARN are mutually exclusive parameters.")


def two_environments(lam: Any, name: str) -> list[str]:
    """Two concurrent invocations: two environments, two streams."""
    streams: list[str] = []

    def one(tag: str) -> None:
        streams.append(run(lam, name, {"lines": 6, "tag": tag, "pause": 0.2,
                                       "json": [{"level": "ERROR", "latency": 150, "tag": tag},
                                                {"level": "INFO", "latency": 20, "tag": tag}]}))

    threads = [threading.Thread(target=one, args=(tag,)) for tag in ("blue", "green")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(streams)) == 2, streams
    return streams


def test_filter_log_events_interleaves_streams_and_filters(logs: Any, plain_lam: Any, server: Server) -> None:
    name = create_function(plain_lam, PRINTER, name=unique("filter"))
    group = f"/aws/lambda/{name}"
    streams = two_environments(plain_lam, name)
    stored = stored_log(server, plain_lam, name)

    every = logs.filter_log_events(logGroupName=group)["events"]
    assert len(every) == sum(len(lines) for lines in stored.values()) == 2 * (6 + 2 + 3)
    assert [(e["timestamp"], e["logStreamName"]) for e in every] == sorted(
        (e["timestamp"], e["logStreamName"]) for e in every)
    assert {e["logStreamName"] for e in every} == set(streams)
    assert len({e["eventId"] for e in every}) == len(every) and all(re.fullmatch(r"\d{56}", e["eventId"])
                                                                   for e in every)
    for stream in streams:
        assert messages([e for e in every if e["logStreamName"] == stream]) == stored[stream]

    def matched(pattern: str, **params: Any) -> list[str]:
        return messages(logs.filter_log_events(logGroupName=group, filterPattern=pattern, **params)["events"])

    assert sorted(matched("plain")) == sorted(f"{tag}-{i} plain" for tag in ("blue", "green") for i in range(6))
    assert sorted(matched("blue plain")) == [f"blue-{i} plain" for i in range(6)]
    assert sorted(matched('"blue-3 plain"')) == ["blue-3 plain"]
    assert len(matched("?START ?END")) == 4
    assert len(matched("plain -blue")) == 6
    assert len(matched("blue-3")) == 1
    errors_ = matched('{ $.level = "ERROR" }')
    assert sorted(json.loads(m)["tag"] for m in errors_) == ["blue", "green"]
    assert len(matched("{ $.latency > 100 }")) == 2
    assert [json.loads(m)["tag"] for m in matched('{ ($.level = "INFO") && ($.tag = "green") }')] == ["green"]
    assert matched("{ $.latency > 1000 }") == []
    assert sorted(matched("[tag, word = plain]")) == sorted(matched("plain"))
    assert sorted(matched("[tag = blue-*, word]")) == [f"blue-{i} plain" for i in range(6)]
    assert len(matched("plain", logStreamNames=[streams[0]])) == 6
    assert len(matched("plain", logStreamNamePrefix=streams[1][:-5])) == 6

    # Pages of three, in the same order as the whole.
    paged: list[dict[str, Any]] = []
    answer = logs.filter_log_events(logGroupName=group, limit=3)
    paged += answer["events"]
    while "nextToken" in answer:
        answer = logs.filter_log_events(logGroupName=group, limit=3, nextToken=answer["nextToken"])
        paged += answer["events"]
    assert paged == every
    assert [e for p in logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, filterPattern="plain", PaginationConfig={"PageSize": 5}) for e in p["events"]] == [
        e for e in every if e["message"].endswith(" plain")]

    # A time range.
    cut = every[len(every) // 2]["timestamp"]
    assert logs.filter_log_events(logGroupName=group, startTime=cut)["events"] == [
        e for e in every if e["timestamp"] >= cut]
    assert logs.filter_log_events(logGroupName=group, endTime=cut)["events"] == [
        e for e in every if e["timestamp"] < cut]

    assert error_of(logs.filter_log_events, logGroupName=group, filterPattern="{ $.a = ") == (
        "InvalidParameterException", "Invalid filter pattern")
    assert error_of(logs.filter_log_events, logGroupName=group, logStreamNames=[streams[0]],
                    logStreamNamePrefix="2")[0] == "InvalidParameterException"
    assert error_of(logs.filter_log_events, logGroupName="/aws/lambda/none-" + uuid.uuid4().hex) == (
        "ResourceNotFoundException", "The specified log group does not exist.")


def test_a_custom_log_group_of_the_logging_config(logs: Any, plain_lam: Any) -> None:
    group = f"/team/{unique('shared')}"
    names = [create_function(plain_lam, PRINTER, name=unique("custom"), LoggingConfig={"LogGroup": group})
             for _ in range(2)]
    streams = sorted(run(plain_lam, name, {"lines": 1, "tag": name}) for name in names)
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]] == [group]
    assert logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{names[0]}")["logGroups"] == []
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == streams
    assert sorted(messages(logs.filter_log_events(logGroupName=group, filterPattern="plain")["events"])) == sorted(
        f"{name}-0 plain" for name in names)
    # A group outlives its function, as on AWS: the deleted function's events stay in its group.
    plain_lam.delete_function(FunctionName=names[0])
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]] == streams
    assert logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{names[0]}")["logGroups"] == []


def test_create_and_delete_log_groups(logs: Any, plain_lam: Any, server: Server) -> None:
    made = f"/app/{unique('made')}"
    assert logs.create_log_group(logGroupName=made)["ResponseMetadata"]["HTTPStatusCode"] == 200
    [found] = logs.describe_log_groups(logGroupNamePrefix=made)["logGroups"]
    assert found["storedBytes"] == 0
    assert logs.describe_log_streams(logGroupName=made)["logStreams"] == []
    assert error_of(logs.create_log_group, logGroupName=made) == (
        "ResourceAlreadyExistsException", "The specified log group already exists")
    logs.delete_log_group(logGroupName=made)
    assert logs.describe_log_groups(logGroupNamePrefix=made)["logGroups"] == []
    assert error_of(logs.delete_log_group, logGroupName=made) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    assert error_of(logs.create_log_group, logGroupName="bad name!")[0] == "InvalidParameterException"

    # A function's group: deleting it deletes its events; the function's next log makes it again.
    name = create_function(plain_lam, PRINTER, name=unique("deleted"))
    group = f"/aws/lambda/{name}"
    run(plain_lam, name, {"lines": 3, "tag": "before"})
    assert error_of(logs.create_log_group, logGroupName=group)[0] == "ResourceAlreadyExistsException"
    logs.delete_log_group(logGroupName=group)
    assert stored_log(server, plain_lam, name) == {}
    assert error_of(logs.describe_log_streams, logGroupName=group)[0] == "ResourceNotFoundException"
    run(plain_lam, name, {"lines": 2, "tag": "after"})
    assert sorted(messages(logs.filter_log_events(logGroupName=group, filterPattern="plain")["events"])) == [
        "after-0 plain", "after-1 plain"]


def write_stream(server: Server, function: str, stream: str, events: list[tuple[int, str]]) -> Path:
    path = server.data_dir / "logs" / ACCOUNT / REGION / function / f"{stream}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps({"timestamp": t, "message": m}) + b"\n" for t, m in events))
    return path


def test_retention_deletes_older_events_from_disk(logs: Any, plain_lam: Any, server: Server) -> None:
    name = create_function(plain_lam, PRINTER, name=unique("retention"))
    group = f"/aws/lambda/{name}"
    current = run(plain_lam, name, {"lines": 2})
    now = int(time.time() * 1000)
    old = write_stream(server, name, "2020/01/01/[$LATEST]" + "a" * 32,
                       [(now - 3 * DAY_MS, "old-0"), (now - 3 * DAY_MS + 5, "old-1")])
    mixed = write_stream(server, name, "2020/01/02/[$LATEST]" + "b" * 32,
                         [(now - 2 * DAY_MS, "old-2"), (now - 3_600_000, "recent-0")])
    assert len(messages(logs.filter_log_events(logGroupName=group, filterPattern="?old-0 ?old-1 ?old-2")[
        "events"])) == 3

    assert error_of(logs.put_retention_policy, logGroupName=group, retentionInDays=2)[0] == (
        "InvalidParameterException")
    assert error_of(logs.put_retention_policy, logGroupName="/aws/lambda/none-" + uuid.uuid4().hex,
                    retentionInDays=1)[0] == "ResourceNotFoundException"
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert not old.exists()
    assert [json.loads(line)["message"] for line in mixed.read_text().splitlines()] == ["recent-0"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 1
    assert sorted(s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]) == (
        sorted([current, mixed.relative_to(mixed.parents[3]).as_posix()[: -len(".jsonl")]]))

    # Reads delete what has expired since: an event that arrives already old is gone on the next read.
    write_stream(server, name, "2020/01/03/[$LATEST]" + "c" * 32, [(now - 5 * DAY_MS, "old-3")])
    assert "old-3" not in messages(logs.filter_log_events(logGroupName=group)["events"])
    assert not any("old-3" in line for lines in stored_log(server, plain_lam, name).values() for line in lines)

    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    write_stream(server, name, "2020/01/04/[$LATEST]" + "d" * 32, [(now - 5 * DAY_MS, "old-4")])
    assert "old-4" in messages(logs.filter_log_events(logGroupName=group)["events"])


def test_the_periodic_sweep_deletes_expired_events(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs")
    clock = [time.time()]
    service = LogsService(store, lambda *_: None, clock=lambda: clock[0])
    first = "2023/11/14/[$LATEST]" + "e" * 32
    store.append(ACCOUNT, REGION, "fn", first, b"first\n")  # stamped with the real time
    later = int(time.time() * 1000) + 2 * DAY_MS
    path = store.path(ACCOUNT, REGION, "fn", "2023/11/16/[$LATEST]" + "f" * 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(orjson.dumps({"timestamp": later, "message": "second"}) + b"\n")
    service.put_retention_policy(ACCOUNT, REGION, {"logGroupName": "/aws/lambda/fn", "retentionInDays": 1})
    assert service.sweep() == 0
    clock[0] = later / 1000 + 1  # two days on: "first" is older than a day, "second" is not
    assert service.sweep() == 1
    assert not store.path(ACCOUNT, REGION, "fn", first).exists()

    def stored() -> list[str]:
        return [json.loads(line)["message"] for f in sorted((tmp_path / "logs").rglob("*.jsonl"))
                for line in f.read_text().splitlines()]

    assert stored() == ["second"]
    store.append(ACCOUNT, REGION, "fn", first, b"third\n")  # the stream's file is opened again
    assert sorted(stored()) == ["second", "third"]
    store.close()


def test_the_aws_cli_reads_logs(server: Server, plain_lam: Any, tmp_path: Path) -> None:
    name = create_function(plain_lam, PRINTER, name=unique("cli"))
    group = f"/aws/lambda/{name}"
    stream = run(plain_lam, name, {"lines": 3, "json": [{"level": "ERROR", "latency": 300}]})
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    def aws(*args: str) -> Any:
        done = subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "logs", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert [g["logGroupName"] for g in aws("describe-log-groups", "--log-group-name-prefix", group)[
        "logGroups"]] == [group]
    events = aws("get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head")
    assert messages(events["events"])[1:5] == ["line-0 plain", "line-1 plain", "line-2 plain",
                                               '{"level": "ERROR", "latency": 300}']
    found = aws("filter-log-events", "--log-group-name", group, "--filter-pattern", '{ $.latency > 100 }')
    assert messages(found["events"]) == ['{"level": "ERROR", "latency": 300}']
    found = aws("filter-log-events", "--log-group-name", group, "--filter-pattern", "?line-0 ?line-2")
    assert messages(found["events"]) == ["line-0 plain", "line-2 plain"]


def test_every_operation_was_checked_against_the_model(logs: Any) -> None:
    assert shapecheck.attach(logs).operations >= {
        "DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "CreateLogGroup",
        "DeleteLogGroup", "PutRetentionPolicy", "DeleteRetentionPolicy"}
    assert shapecheck.attach(logs).problems == []
