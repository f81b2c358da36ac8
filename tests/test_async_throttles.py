"""Throttled asynchronous events back off and wait, without using up their retries.

The function's reserved concurrency is 1 and a synchronous call holds that one slot, so
`InvokeService.run` throttles the event (TooManyRequestsException); it goes back to the
queue with backoff and runs once the slot is free.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from async_helpers import ATTEMPTS, COLLECTOR, check_record, collector_arn, function_view, send, wait_records
from helpers import Server, create_function, wait_for

SCALE = 0.01


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("async-throttles") / "data", "--async-time-scale", str(SCALE)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def slot_taken(lam: Any, name: str) -> bool:
    try:
        lam.invoke(FunctionName=name, Payload=b"{}")
    except lam.exceptions.TooManyRequestsException:
        return True
    return False


def hold_the_slot(lam: Any, name: str) -> Any:
    """A 10 s synchronous call; tried again if one of the probes had the slot at that moment."""
    while True:
        try:
            return lam.invoke(FunctionName=name, Payload=json.dumps({"fail": "sleep"}).encode())
        except lam.exceptions.TooManyRequestsException:
            time.sleep(0.05)


def test_throttles_back_off_without_using_up_retries(srv: Server, lam: Any) -> None:
    """With its only slot taken by a synchronous call, the event is throttled, waits, then runs once."""
    name = create_function(lam, ATTEMPTS, Timeout=10)
    collector = create_function(lam, COLLECTOR)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={
        "OnSuccess": {"Destination": collector_arn(lam, collector)}})
    slow = srv.client()
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(hold_the_slot, slow, name)
        assert wait_for(lambda: slot_taken(lam, name), timeout=30)  # the synchronous call holds the slot
        request_id = send(lam, name, {"n": "throttled"})
        assert wait_for(lambda: function_view(srv, name)["counters"].get("throttles", 0) >= 2, timeout=30)
        busy.result()
    [record] = wait_records(srv, lam, collector, 1)
    check_record(record, condition="Success")
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 1  # throttles are not attempts


