"""One function flooding the asynchronous queue does not hold back another function's events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from async_helpers import attempts, function_view, settled
from helpers import Server, create_function, wait_for

SLOW = """
import time
def handler(event, context):
    print("ATTEMPT", context.aws_request_id, repr(time.time()))
    time.sleep(0.05)
    return None
"""

FLOOD = 300


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Eight events at once in all, two per function: the flood alone needs several seconds.
    server = Server(tmp_path_factory.mktemp("async-fairness") / "data", "--async-concurrency", "8").start()
    yield server
    server.stop()


def send_many(srv: Server, name: str, count: int) -> set[str]:
    def send(i: int) -> str:
        lam = clients[i % len(clients)]
        r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"i": i}).encode())
        assert r["StatusCode"] == 202
        return str(r["ResponseMetadata"]["RequestId"])

    clients = [srv.client() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        return set(pool.map(send, range(count)))


def test_a_flood_does_not_delay_another_function(srv: Server) -> None:
    lam: Any = srv.client()
    flood = create_function(lam, SLOW)
    quiet = create_function(lam, SLOW)
    flooded = send_many(srv, flood, FLOOD)
    backlog_before = function_view(srv, flood)["queueDepth"]
    sent = send_many(srv, quiet, 6)
    assert wait_for(lambda: len(attempts(srv, lam, quiet)) == 6, timeout=60)
    backlog_after = function_view(srv, flood)["queueDepth"]
    # The quiet function's events ran while most of the flood was still waiting ...
    assert backlog_before > FLOOD // 2 and backlog_after > FLOOD // 3, (backlog_before, backlog_after)
    assert {rid for rid, _ in attempts(srv, lam, quiet)} == sent
    # ... and the flood never ran more than its share at once.
    assert function_view(srv, flood)["inFlight"] <= 2
    # In the end the flood ran too, every event of it.
    view = settled(srv, flood, timeout=120)
    assert view["counters"]["succeeded"] == FLOOD
    assert {rid for rid, _ in attempts(srv, lam, flood)} == flooded
