"""EventBridge Scheduler through the `scheduler` client: schedules in the default group with
Lambda targets; one-time `at()` schedules that fire with their Input (context attributes put
in), are deleted after completion, and fire once after a restart that they fell into; errors
and shapes as the service's; time zones, daylight-saving gaps and start/end dates."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError
from helpers import ROLE, Server, create_function, stored_log, unique, wait_for

from lambdastack.control.scheduler import Timing
from lambdastack.schedules import parse_schedule

RECORDER = 'import json\ndef handler(event, context):\n    print("EVENT " + json.dumps(event))\n'


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("scheduler") / "data").start()
    yield server
    server.stop()


def events(server: Server, lam: Any, name: str) -> list[Any]:
    return [json.loads(line[6:]) for s in stored_log(server, lam, name).values() for line in s
            if line.startswith("EVENT ")]


def at_in(seconds: float) -> str:
    return "at(" + (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S") + ")"


def target(lam: Any, name: str, **extra: Any) -> dict[str, Any]:
    return {"Arn": lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"], "RoleArn": ROLE, **extra}


def test_a_one_time_schedule_fires_with_its_input_and_is_deleted_after(srv: Server) -> None:
    lam, scheduler = srv.client(), srv.client("scheduler")
    name = create_function(lam, RECORDER)
    schedule = unique("once")
    expression = at_in(3)
    arn = scheduler.create_schedule(
        Name=schedule, ScheduleExpression=expression, FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target=target(lam, name, Input=json.dumps({"arn": "<aws.scheduler.schedule-arn>", "order": 42,
                                                   "at": "<aws.scheduler.scheduled-time>",
                                                   "attempt": "<aws.scheduler.attempt-number>"})))["ScheduleArn"]
    assert arn == f"arn:aws:scheduler:us-east-1:000000000000:schedule/default/{schedule}"
    got = scheduler.get_schedule(Name=schedule)
    assert (got["ScheduleExpression"], got["ScheduleExpressionTimezone"], got["State"], got["GroupName"],
            got["ActionAfterCompletion"], got["FlexibleTimeWindow"]) == (
        expression, "UTC", "ENABLED", "default", "DELETE", {"Mode": "OFF"})
    assert isinstance(got["CreationDate"], dt.datetime)

    assert wait_for(lambda: events(srv, lam, name), timeout=20)
    [event] = events(srv, lam, name)
    assert event == {"arn": arn, "order": 42, "at": expression[3:-1] + "Z", "attempt": "1"}
    with pytest.raises(ClientError) as caught:  # completed: deleted
        wait_for(lambda: scheduler.get_schedule(Name=schedule) and False, timeout=5)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_time_that_fell_while_the_server_was_down_fires_once_after_restart(tmp_path: Any) -> None:
    server = Server(tmp_path / "data").start()
    try:
        lam, scheduler = server.client(), server.client("scheduler")
        name = create_function(lam, RECORDER)
        scheduler.create_schedule(Name="later", ScheduleExpression=at_in(2), FlexibleTimeWindow={"Mode": "OFF"},
                                  Target=target(lam, name))
        server.stop()
        time.sleep(4)
        server = Server(tmp_path / "data", port=server.port).start()
        lam = server.client()
        assert wait_for(lambda: events(server, lam, name), timeout=20)
        server.stop()
        server = Server(tmp_path / "data", port=server.port).start()
        time.sleep(2.5)
        assert events(server, lam, name) == [{}]  # no Input: {}; fired once across both restarts
    finally:
        server.stop()


def test_schedule_shapes_and_errors(srv: Server) -> None:
    lam, scheduler = srv.client(), srv.client("scheduler")
    name = create_function(lam, RECORDER)
    schedule = unique("nightly")
    made = dict(Name=schedule, ScheduleExpression="cron(0 3 * * ? *)", ScheduleExpressionTimezone="Europe/Berlin",
                FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}, Target=target(lam, name),
                Description="nightly report", State="DISABLED")
    scheduler.create_schedule(**made)

    def refused(call: Any, code: str, status: int, **params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            call(**params)
        assert caught.value.response["Error"]["Code"] == code, caught.value.response
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        message: str = caught.value.response["Error"]["Message"]
        return message

    assert "already exists" in refused(scheduler.create_schedule, "ConflictException", 409, **made)
    refused(scheduler.get_schedule, "ResourceNotFoundException", 404, Name="no-such-schedule")
    refused(scheduler.delete_schedule, "ResourceNotFoundException", 404, Name="no-such-schedule")
    refused(scheduler.get_schedule, "ResourceNotFoundException", 404, Name=schedule, GroupName="other")
    for bad in ({"ScheduleExpression": "rate(0 minutes)"}, {"ScheduleExpression": "cron(0 3 * * *)"},
                {"ScheduleExpression": "at(2030-02-30T10:00:00)"}, {"ScheduleExpressionTimezone": "Mars/Olympus"},
                {"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}},
                {"Target": {"Arn": "arn:aws:sqs:us-east-1:000000000000:q", "RoleArn": ROLE}}):
        refused(scheduler.create_schedule, "ValidationException", 400, **{**made, "Name": unique("bad"), **bad})

    got = scheduler.get_schedule(Name=schedule)
    assert (got["ScheduleExpressionTimezone"], got["State"], got["Description"], got["FlexibleTimeWindow"]) == (
        "Europe/Berlin", "DISABLED", "nightly report", {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15})
    scheduler.update_schedule(**{**made, "ScheduleExpression": "rate(5 minutes)", "State": "ENABLED"})
    updated = scheduler.get_schedule(Name=schedule)
    assert (updated["ScheduleExpression"], updated["State"]) == ("rate(5 minutes)", "ENABLED")
    assert updated["LastModificationDate"] >= got["LastModificationDate"]
    assert updated["CreationDate"] == got["CreationDate"]

    listed = scheduler.list_schedules(NamePrefix=schedule)["Schedules"]
    assert [(s["Name"], s["State"], s["GroupName"], s["Target"]["Arn"]) for s in listed] == [
        (schedule, "ENABLED", "default", made["Target"]["Arn"])]
    assert scheduler.list_schedules(NamePrefix=schedule, State="DISABLED")["Schedules"] == []
    assert scheduler.get_schedule_group(Name="default")["State"] == "ACTIVE"
    assert [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]] == ["default"]
    scheduler.delete_schedule(Name=schedule)
    assert scheduler.list_schedules(NamePrefix=schedule)["Schedules"] == []


def test_timings_follow_the_time_zone_and_the_start_and_end_dates() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    anchor = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def timing(expression: str, zone: ZoneInfo, **bounds: Any) -> Timing:
        return Timing(expression=parse_schedule(expression), zone=zone, anchor=anchor, **bounds)

    # 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
    nightly = timing("cron(0 3 * * ? *)", berlin)
    assert nightly.next_after(dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 1, 11, 2,
                                                                                             tzinfo=dt.UTC)
    assert nightly.next_after(dt.datetime(2026, 7, 10, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 7, 11, 1,
                                                                                             tzinfo=dt.UTC)
    # 02:30 does not exist in New York on 8 March 2026 (spring forward): that day is skipped.
    early = timing("cron(30 2 * * ? *)", new_york)
    assert early.next_after(dt.datetime(2026, 3, 7, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 3, 9, 6, 30,
                                                                                          tzinfo=dt.UTC)
    # 01:30 happens twice on 1 November 2026 (fall back): it fires once.
    twice = timing("cron(30 1 * * ? *)", new_york)
    first = twice.next_after(dt.datetime(2026, 10, 31, 12, tzinfo=dt.UTC))
    assert first == dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)
    assert twice.next_after(first) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
    # Start and end dates bound the firings.
    bounded = timing("cron(0 12 * * ? *)", ZoneInfo("UTC"), start=dt.datetime(2026, 5, 1, 13, tzinfo=dt.UTC),
                     end=dt.datetime(2026, 5, 3, 12, tzinfo=dt.UTC))
    assert bounded.next_after(anchor) == dt.datetime(2026, 5, 2, 12, tzinfo=dt.UTC)
    assert bounded.next_after(dt.datetime(2026, 5, 2, 12, tzinfo=dt.UTC)) == dt.datetime(2026, 5, 3, 12,
                                                                                            tzinfo=dt.UTC)
    assert bounded.next_after(dt.datetime(2026, 5, 3, 12, tzinfo=dt.UTC)) is None
    # A flexible window puts each firing at the same place in it every time it is asked.
    flexible = Timing(expression=parse_schedule("rate(1 hour)"), zone=ZoneInfo("UTC"), anchor=anchor,
                      flexible_s=900, key="arn:x")
    offsets = {flexible.offset(anchor + dt.timedelta(hours=h)) for h in range(20)}
    assert all(dt.timedelta() <= o < dt.timedelta(minutes=15) for o in offsets) and len(offsets) > 1
    assert flexible.offset(anchor) == flexible.offset(anchor)
