"""EventBridge at the same endpoint (`boto3.client("events")`, `aws events`): rules and targets
with EventBridge's shapes and errors, PutEvents matched by pattern and delivered to Lambda
targets (Input, InputPath, InputTransformer), and scheduled rules that fire each minute once,
across a `kill -9` of the server."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function, stored_log, unique, wait_for

PRINTER = 'import json\ndef handler(event, context):\n    print("EVENT " + json.dumps(event))\n'
AWS = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module")
def ev(server: Server) -> Any:
    return client_for(server.url, "events")


def printer(lam: Any) -> tuple[str, str]:
    name = create_function(lam, PRINTER)
    return name, lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def received(server: Server, lam: Any, name: str) -> list[Any]:
    lines = [line for stream in stored_log(server, lam, name).values() for line in stream if line.startswith("EVENT ")]
    return [json.loads(line[len("EVENT "):]) for line in lines]


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_rules_and_targets(ev: Any, lam: Any) -> None:
    _, arn = printer(lam)
    name = unique("rule")
    made = ev.put_rule(Name=name, EventPattern=json.dumps({"source": ["shop"]}), Description="orders")
    assert made["RuleArn"] == f"arn:aws:events:us-east-1:000000000000:rule/{name}"
    described = ev.describe_rule(Name=name)
    assert {k: described[k] for k in ("Name", "Arn", "State", "EventBusName", "Description")} == {
        "Name": name, "Arn": made["RuleArn"], "State": "ENABLED", "EventBusName": "default", "Description": "orders"}
    ev.put_rule(Name=name + "-b", ScheduleExpression="cron(0 12 ? * MON-FRI *)")
    listed = ev.list_rules(NamePrefix=name, Limit=1)
    rest = ev.list_rules(NamePrefix=name, Limit=1, NextToken=listed["NextToken"])
    assert [r["Name"] for r in listed["Rules"] + rest["Rules"]] == [name, name + "-b"]
    ev.disable_rule(Name=name)
    assert ev.describe_rule(Name=name)["State"] == "DISABLED"
    ev.enable_rule(Name=name)

    put = ev.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": arn},
                                             {"Id": "queue", "Arn": "arn:aws:sqs:us-east-1:000000000000:q"}])
    assert put["FailedEntryCount"] == 1 and put["FailedEntries"][0]["TargetId"] == "queue"
    assert [t["Id"] for t in ev.list_targets_by_rule(Rule=name)["Targets"]] == ["fn"]
    assert error_of(ev.delete_rule, Name=name) == ("ValidationException", "Rule can't be deleted since it has targets.")
    removed = ev.remove_targets(Rule=name, Ids=["fn", "nothing"])
    assert removed["FailedEntryCount"] == 1 and removed["FailedEntries"][0]["TargetId"] == "nothing"
    ev.delete_rule(Name=name)
    assert error_of(ev.describe_rule, Name=name)[0] == "ResourceNotFoundException"

    assert error_of(ev.put_rule, Name="x", EventPattern="{not json")[0] == "InvalidEventPatternException"
    assert error_of(ev.put_rule, Name="x", EventPattern=json.dumps({"source": "not a list"}))[0] == (
        "InvalidEventPatternException")
    assert error_of(ev.put_rule, Name="x", ScheduleExpression="cron(0 0 * * * *)")[0] == "ValidationException"
    assert error_of(ev.put_rule, Name="x")[0] == "ValidationException"
    assert error_of(ev.put_targets, Rule="no-such-rule", Targets=[{"Id": "a", "Arn": arn}])[0] == (
        "ResourceNotFoundException")


def test_put_events_reach_matching_rules_targets(ev: Any, lam: Any, server: Server) -> None:
    name, arn = printer(lam)
    rule = unique("orders")
    pattern = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}
    ev.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    ev.put_targets(Rule=rule, Targets=[
        {"Id": "whole", "Arn": arn},
        {"Id": "constant", "Arn": arn, "Input": json.dumps({"constant": True})},
        {"Id": "path", "Arn": arn, "InputPath": "$.detail"},
        {"Id": "transformed", "Arn": arn, "InputTransformer": {
            "InputPathsMap": {"total": "$.detail.total", "who": "$.detail.customer"},
            "InputTemplate": '{"summary": "order by <who>", "total": <total>, "rule": "<aws.events.rule-name>"}'}},
    ])
    answer = ev.put_events(Entries=[
        {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 250, "customer": "ana"})},
        {"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 5, "customer": "bo"})},
        {"Source": "other", "DetailType": "Order", "Detail": json.dumps({"total": 999})},
        {"Source": "shop", "DetailType": "Order", "Detail": "not json"},
    ])
    assert answer["FailedEntryCount"] == 1 and answer["Entries"][3]["ErrorCode"] == "MalformedDetail"
    event_id = answer["Entries"][0]["EventId"]
    assert wait_for(lambda: len(received(server, lam, name)) >= 4, timeout=30)
    time.sleep(1)
    got = received(server, lam, name)
    assert len(got) == 4  # the one matching event, once per target; the others matched nothing
    whole = next(e for e in got if e.get("id") == event_id)
    assert (whole["source"], whole["detail-type"], whole["detail"], whole["account"], whole["region"]) == (
        "shop", "Order", {"total": 250, "customer": "ana"}, "000000000000", "us-east-1")
    assert {"constant": True} in got and {"total": 250, "customer": "ana"} in got
    assert {"summary": "order by ana", "total": 250, "rule": rule} in got

    ev.disable_rule(Name=rule)
    ev.put_events(Entries=[{"Source": "shop", "DetailType": "Order", "Detail": json.dumps({"total": 500})}])
    time.sleep(2)
    assert len(received(server, lam, name)) == 4  # a disabled rule delivers nothing


def test_the_aws_cli_puts_rules(server: Server, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    name = unique("cli")
    done = subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "events", "put-rule",
                           "--name", name, "--schedule-expression", "rate(5 minutes)"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["RuleArn"].endswith(f":rule/{name}")


def test_a_schedule_fires_each_minute_once_across_a_kill(tmp_path: Path) -> None:
    """rate(1 minute): the first minute fires; the server is killed (-9) and a minute passes while
    it is down; after the restart that minute fires (catch-up), and no minute fires twice."""
    data = tmp_path / "data"
    server = Server(data).start()
    try:
        lam, ev = client_for(server.url), client_for(server.url, "events")
        name, arn = printer(lam)
        ev.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
        ev.put_targets(Rule="every-minute", Targets=[{"Id": "fn", "Arn": arn}])
        assert wait_for(lambda: received(server, lam, name), timeout=75, interval=0.5)
        first = received(server, lam, name)[0]
        assert (first["detail-type"], first["source"], first["detail"]) == ("Scheduled Event", "aws.events", {})
        assert first["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/every-minute"]
        assert first["time"].endswith(":00Z")
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        # Stay down across the next minute boundary.
        now = dt.datetime.now(dt.UTC)
        time.sleep(60 - now.second + 3)
        server = Server(data, port=server.port).start()
        lam = client_for(server.url)
        last = dt.datetime.strptime(first["time"], "%Y-%m-%dT%H:%M:%SZ")
        missed = (last + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert wait_for(lambda: missed in [e["time"] for e in received(server, lam, name)], timeout=30)
        now = dt.datetime.now(dt.UTC)
        time.sleep(60 - now.second + 5)  # one more minute, fired live
        times = [e["time"] for e in received(server, lam, name)]
        assert len(times) == len(set(times)), times  # no minute twice
        minutes = sorted(dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ") for t in times)
        assert all(b - a == dt.timedelta(minutes=1) for a, b in itertools.pairwise(minutes)), times
        assert len(minutes) >= 3
    finally:
        server.stop()
