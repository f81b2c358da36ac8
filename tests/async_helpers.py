"""Helpers of the asynchronous-invocation tests: functions that record what they see, the
`/_lambdastack/async` view, and Lambda's invocation record shape."""

from __future__ import annotations

import json
import re
from typing import Any

import requests
from helpers import Server, stored_log, wait_for


def send(lam: Any, name: str, event: Any, **params: Any) -> str:
    """An Event invocation, accepted (202); its request id."""
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode(), **params)
    assert r["StatusCode"] == 202
    return str(r["ResponseMetadata"]["RequestId"])


def collector_arn(lam: Any, name: str) -> str:
    return str(lam.get_function_configuration(FunctionName=name)["FunctionArn"])


# Prints one line per attempt: its request id and the time it started; fails when asked to.
ATTEMPTS = """
import json, os, sys, time
def handler(event, context):
    print("ATTEMPT", context.aws_request_id, repr(time.time()))
    how = event.get("fail") if isinstance(event, dict) else None
    if how == "raise":
        raise ValueError("failed on purpose: " + str(event.get("tag")))
    if how == "sleep":
        time.sleep(10)
    if how == "exit":
        sys.stdout.flush()
        os._exit(3)
    return {"handled": event}
"""

# A destination function: prints every record it is sent.
COLLECTOR = """
import json
def handler(event, context):
    print("RECORD " + json.dumps(event))
    return "ok"
"""

RECORD_KEYS = {"version", "timestamp", "requestContext", "requestPayload", "responseContext", "responsePayload"}
REQUEST_CONTEXT_KEYS = {"requestId", "functionArn", "condition", "approximateInvokeCount"}
RESPONSE_CONTEXT_KEYS = {"statusCode", "executedVersion", "functionError"}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def attempts(server: Server, lam: Any, name: str) -> list[tuple[str, float]]:
    """(request id, start time) of every attempt the function logged, in order."""
    found = []
    for lines in stored_log(server, lam, name).values():
        for line in lines:
            if line.startswith("ATTEMPT "):
                _, rid, at = line.split()
                found.append((rid, float(at)))
    return sorted(found, key=lambda a: a[1])


def records(server: Server, lam: Any, collector: str) -> list[dict[str, Any]]:
    out = []
    for lines in stored_log(server, lam, collector).values():
        out += [json.loads(line[len("RECORD "):]) for line in lines if line.startswith("RECORD ")]
    return out


def wait_records(server: Server, lam: Any, collector: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
    got = wait_for(lambda: len(records(server, lam, collector)) >= count, timeout=timeout, interval=0.2)
    found = records(server, lam, collector)
    assert got, f"expected {count} records, got {found}"
    return found


def async_view(server: Server, name: str | None = None) -> dict[str, Any]:
    url = server.url + "/_lambdastack/async" + (f"/{name}" if name else "")
    response = requests.get(url, timeout=10)
    assert response.status_code in (200, 404), response.text
    return dict(response.json())


def function_view(server: Server, name: str) -> dict[str, Any]:
    """The function's entry in the async view (zeros when it has none yet)."""
    for entry in async_view(server, name)["functions"]:
        if entry["functionName"] == name:
            return dict(entry)
    return {"queueDepth": 0, "inFlight": 0, "counters": {}, "dropped": {}, "destinationDeliveryFailures": 0,
            "deadLetterErrors": 0}


def settled(server: Server, name: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until the function has nothing queued or running; its view then."""
    done = wait_for(lambda: (v := function_view(server, name))["queueDepth"] == 0 and v["inFlight"] == 0,
                    timeout=timeout, interval=0.2)
    view = function_view(server, name)
    assert done, view
    return view


def check_record(record: dict[str, Any], *, condition: str) -> None:
    """Lambda's documented invocation record, and nothing else."""
    assert set(record) <= RECORD_KEYS and {"version", "timestamp", "requestContext", "requestPayload"} <= set(record)
    assert record["version"] == "1.0"
    assert TIMESTAMP.fullmatch(record["timestamp"]), record["timestamp"]
    assert set(record["requestContext"]) == REQUEST_CONTEXT_KEYS
    assert record["requestContext"]["condition"] == condition
    assert isinstance(record["requestContext"]["approximateInvokeCount"], int)
    assert re.fullmatch(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+:[\w$-]+",
                        record["requestContext"]["functionArn"]), record["requestContext"]["functionArn"]
    if "responseContext" in record:
        assert set(record["responseContext"]) <= RESPONSE_CONTEXT_KEYS
        assert isinstance(record["responseContext"]["statusCode"], int)
    if condition == "Success":
        assert "functionError" not in record["responseContext"]
