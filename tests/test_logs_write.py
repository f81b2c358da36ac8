"""Writing to CloudWatch Logs at the same endpoint: CreateLogStream and PutLogEvents, through boto3
and the AWS CLI, read back with GetLogEvents, FilterLogEvents and DescribeLogStreams.
Every response is checked against botocore's output shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapecheck
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function, invoke, unique

AWS = Path(sys.executable).with_name("aws")
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def logs(server: Server) -> Iterator[Any]:
    client = client_for(server.url, "logs")
    with shapecheck.checked(client):
        yield client


def now_ms() -> int:
    return int(time.time() * 1000)


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def group_with_stream(logs: Any) -> tuple[str, str]:
    group, stream = f"/app/{unique('grp')}", "worker/1"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def test_put_then_read_back(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    [described] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert described["logStreamName"] == stream and "firstEventTimestamp" not in described  # no events yet
    t = now_ms() - 5000
    batch = [{"timestamp": t, "message": "started"}, {"timestamp": t + 1, "message": "ERROR disk full"},
             {"timestamp": t + 2, "message": '{"level": "WARN", "latency": 250}'}]
    answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    assert answer["nextSequenceToken"] and "rejectedLogEventsInfo" not in answer
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [(e["timestamp"], e["message"]) for e in got] == [(e["timestamp"], e["message"]) for e in batch]
    found = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [(e["message"], e["logStreamName"]) for e in found] == [("ERROR disk full", stream)]
    found = logs.filter_log_events(logGroupName=group, filterPattern="{ $.latency > 100 }")["events"]
    assert [e["message"] for e in found] == [batch[2]["message"]]
    [described] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert (described["firstEventTimestamp"], described["lastEventTimestamp"]) == (t, t + 2)


def test_a_batch_from_earlier_is_put_in_time_order(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    t = now_ms() - 60_000
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t + 10_000, "message": "later"}])
    batch = [{"timestamp": t, "message": "earlier"}, {"timestamp": t + 20_000, "message": "last"}]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["earlier", "later", "last"]
    window = logs.filter_log_events(logGroupName=group, startTime=t + 5000, endTime=t + 15_000)["events"]
    assert [e["message"] for e in window] == ["later"]


def test_events_too_old_or_too_new_are_rejected_not_stored(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    t = now_ms()
    batch = [{"timestamp": t - 15 * 24 * HOUR_MS, "message": "too old"},
             {"timestamp": t - 14 * 24 * HOUR_MS - 60_000, "message": "still too old"}]
    answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    assert answer["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    batch = [{"timestamp": t, "message": "kept"}, {"timestamp": t + 3 * HOUR_MS, "message": "too new"}]
    answer = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    assert answer["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in got] == ["kept"]
    # Older than the group's retention: expired.
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    answer = logs.put_log_events(logGroupName=group, logStreamName=stream,
                                 logEvents=[{"timestamp": t - 2 * 24 * HOUR_MS, "message": "expired"}])
    assert answer["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}


def test_bad_writes_get_aws_errors(logs: Any) -> None:
    group, stream = group_with_stream(logs)
    t = now_ms()
    assert error_of(logs.create_log_stream, logGroupName=group, logStreamName=stream) == (
        "ResourceAlreadyExistsException", "The specified log stream already exists")
    assert error_of(logs.create_log_stream, logGroupName=f"/none/{unique()}", logStreamName="s") == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    assert error_of(logs.create_log_stream, logGroupName=group, logStreamName="a:b")[0] == "InvalidParameterException"
    event = [{"timestamp": t, "message": "x"}]
    assert error_of(logs.put_log_events, logGroupName=group, logStreamName="missing", logEvents=event) == (
        "ResourceNotFoundException", "The specified log stream does not exist.")
    assert error_of(logs.put_log_events, logGroupName=f"/none/{unique()}", logStreamName=stream, logEvents=event) == (
        "ResourceNotFoundException", "The specified log group does not exist.")
    backwards = [{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}]
    assert error_of(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=backwards) == (
        "InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
    wide = [{"timestamp": t - 25 * HOUR_MS, "message": "a"}, {"timestamp": t, "message": "b"}]
    assert error_of(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=wide)[1] == (
        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
    huge = [{"timestamp": t, "message": "x" * 300_000} for _ in range(4)]
    code, message = error_of(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=huge)
    assert code == "InvalidParameterException" and message.startswith("Upload too large: 1200104 bytes")
    assert logs.get_log_events(logGroupName=group, logStreamName=stream)["events"] == []


def test_a_stream_of_ones_own_in_a_functions_group(logs: Any, plain_lam: Any) -> None:
    name = create_function(plain_lam, "def handler(event, context):\n    print('from the function')\n",
                           name=unique("logw"))
    assert invoke(plain_lam, name).status == 200
    group = f"/aws/lambda/{name}"
    logs.create_log_stream(logGroupName=group, logStreamName="deploys")
    logs.put_log_events(logGroupName=group, logStreamName="deploys",
                        logEvents=[{"timestamp": now_ms(), "message": "deployed from the pipeline"}])
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert "deploys" in streams and len(streams) == 2
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert "from the function" in messages and "deployed from the pipeline" in messages
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


def test_the_aws_cli_writes_logs(server: Server, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    def aws(*args: str) -> Any:
        done = subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "logs", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    group = f"/cli/{unique('grp')}"
    aws("create-log-group", "--log-group-name", group)
    aws("create-log-stream", "--log-group-name", group, "--log-stream-name", "s1")
    t = now_ms()
    answer = aws("put-log-events", "--log-group-name", group, "--log-stream-name", "s1", "--log-events",
                 f"timestamp={t},message=hello", f"timestamp={t + 1},message=world")
    assert answer["nextSequenceToken"]
    events = aws("get-log-events", "--log-group-name", group, "--log-stream-name", "s1", "--start-from-head")
    assert [e["message"] for e in events["events"]] == ["hello", "world"]
