"""Retries of asynchronous invocations, event age, reserved concurrency 0, and the records they produce.

The server runs with `--async-time-scale 0.01`: Lambda's one-minute wait before a second
attempt lasts 0.6 s, two minutes 1.2 s, and a maximum event age of 60 s lasts 0.6 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from async_helpers import (
    ATTEMPTS,
    COLLECTOR,
    attempts,
    check_record,
    collector_arn,
    function_view,
    send,
    settled,
    wait_records,
)
from helpers import Server, create_function, wait_for

SCALE = 0.01


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("async-retries") / "data", "--async-time-scale", str(SCALE)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def test_function_errors_are_retried_twice_with_lambdas_spacing(srv: Server, lam: Any) -> None:
    name = create_function(lam, ATTEMPTS)
    request_id = send(lam, name, {"fail": "raise", "tag": 1})
    view = settled(srv, name)
    seen = attempts(srv, lam, name)
    assert [rid for rid, _ in seen] == [request_id] * 3, seen  # retries keep the request id
    first_gap, second_gap = seen[1][1] - seen[0][1], seen[2][1] - seen[1][1]
    # About 1 min before the 2nd attempt and 2 min before the 3rd, scaled; coarse bounds only.
    assert 60 * SCALE * 0.9 <= first_gap < 60 * SCALE * 20, first_gap
    assert 120 * SCALE * 0.9 <= second_gap < 120 * SCALE * 20, second_gap
    assert view["counters"]["retries"] == 2
    assert view["dropped"] == {"RetriesExhausted": 1}


@pytest.mark.parametrize("retries", [0, 1])
def test_maximum_retry_attempts(srv: Server, lam: Any, retries: int) -> None:
    name = create_function(lam, ATTEMPTS)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=retries, DestinationConfig={
        "OnFailure": {"Destination": collector_arn(lam, collector)}})
    event = {"fail": "raise", "tag": "retries"}
    request_id = send(lam, name, event)
    [record] = wait_records(srv, lam, collector, 1)
    assert len(attempts(srv, lam, name)) == retries + 1
    check_record(record, condition="RetriesExhausted")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == retries + 1
    assert record["requestContext"]["functionArn"].endswith(f":function:{name}:$LATEST")
    assert record["requestPayload"] == event
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "failed on purpose: retries"


@pytest.mark.parametrize("how, error_type", [("sleep", "Sandbox.Timedout"), ("exit", "Runtime.ExitError")])
def test_timeouts_and_exits_are_function_errors(srv: Server, lam: Any, how: str, error_type: str) -> None:
    name = create_function(lam, ATTEMPTS, Timeout=1)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1, DestinationConfig={
        "OnFailure": {"Destination": collector_arn(lam, collector)}})
    send(lam, name, {"fail": how})
    [record] = wait_records(srv, lam, collector, 1)
    check_record(record, condition="RetriesExhausted")
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert len(attempts(srv, lam, name)) == 2
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == error_type


def test_success_records(srv: Server, lam: Any) -> None:
    name = create_function(lam, ATTEMPTS)
    collector = create_function(lam, COLLECTOR)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    for qualifier in ("$LATEST", "live"):
        lam.put_function_event_invoke_config(FunctionName=name, Qualifier=qualifier, DestinationConfig={
            "OnSuccess": {"Destination": collector_arn(lam, collector)}})
    first = send(lam, name, {"n": 1})
    second = send(lam, name, {"n": 2}, Qualifier="live")
    found = {r["requestContext"]["requestId"]: r for r in wait_records(srv, lam, collector, 2)}
    for record in found.values():
        check_record(record, condition="Success")
        assert record["requestContext"]["approximateInvokeCount"] == 1
    assert found[first]["requestContext"]["functionArn"].endswith(f"{name}:$LATEST")
    assert found[first]["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert found[first]["requestPayload"] == {"n": 1}
    assert found[first]["responsePayload"] == {"handled": {"n": 1}}
    assert found[second]["requestContext"]["functionArn"].endswith(f"{name}:live")
    assert found[second]["responseContext"] == {"statusCode": 200, "executedVersion": version}


def test_event_age_expiry(srv: Server, lam: Any) -> None:
    """A retry due after the event's maximum age does not run: EventAgeExceeded."""
    name = create_function(lam, ATTEMPTS)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60, DestinationConfig={
        "OnFailure": {"Destination": collector_arn(lam, collector)}})
    send(lam, name, {"fail": "raise"})
    [record] = wait_records(srv, lam, collector, 1)
    check_record(record, condition="EventAgeExceeded")
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert len(attempts(srv, lam, name)) == 1
    assert record["responseContext"]["functionError"] == "Unhandled"
    view = settled(srv, name)
    assert view["counters"]["failed.EventAgeExceeded"] == 1


def test_reserved_concurrency_zero_keeps_events_until_their_maximum_age(srv: Server, lam: Any) -> None:
    name = create_function(lam, ATTEMPTS)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=300, DestinationConfig={
        "OnFailure": {"Destination": collector_arn(lam, collector)}})
    sent = {send(lam, name, {"n": i}) for i in range(3)}
    view = function_view(srv, name)
    assert view["queueDepth"] == 3 and view["reservedConcurrency"] == 0
    found = wait_records(srv, lam, collector, 3)
    assert {r["requestContext"]["requestId"] for r in found} == sent
    for record in found:
        check_record(record, condition="EventAgeExceeded")
        assert record["requestContext"]["approximateInvokeCount"] == 0
    assert attempts(srv, lam, name) == []  # never ran
    assert settled(srv, name)["counters"]["failed.EventAgeExceeded"] == 3


def test_events_run_once_the_reservation_is_lifted(srv: Server, lam: Any) -> None:
    name = create_function(lam, ATTEMPTS)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    sent = {send(lam, name, {"n": i}) for i in range(2)}
    assert not wait_for(lambda: attempts(srv, lam, name), timeout=1.0)
    assert function_view(srv, name)["queueDepth"] == 2
    lam.delete_function_concurrency(FunctionName=name)
    assert wait_for(lambda: len(attempts(srv, lam, name)) == 2, timeout=30)
    assert {rid for rid, _ in attempts(srv, lam, name)} == sent
    assert settled(srv, name)["counters"]["succeeded"] == 2


def test_a_deleted_function_drops_its_events(srv: Server, lam: Any) -> None:
    name = create_function(lam, ATTEMPTS)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    send(lam, name, {"n": 1})
    lam.delete_function(FunctionName=name)
    view = settled(srv, name)
    assert view["dropped"] == {"FunctionNotFound": 1}


def test_retry_state_survives_a_restart(private_server: Any) -> None:
    """Attempts made before a kill -9 stay counted: the event is not retried afresh."""
    srv = private_server("--async-time-scale", "0.05")  # 3 s before the 2nd attempt, 6 s before the 3rd
    lam = srv.client()
    name = create_function(lam, ATTEMPTS)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={
        "OnFailure": {"Destination": collector_arn(lam, collector)}})
    request_id = send(lam, name, {"fail": "raise"})
    assert wait_for(lambda: len(attempts(srv, lam, name)) == 1, timeout=30)
    srv.kill()
    srv = private_server("--async-time-scale", "0.05", data_dir=srv.data_dir, port=srv.port)
    [record] = wait_records(srv, lam, collector, 1)
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert [rid for rid, _ in attempts(srv, lam, name)] == [request_id] * 3
