"""What every kind of runtime must show, whatever packaged it (a zip or a container image).

Each check drives the conformance function (tests/runtimes_functions.py) through boto3 and
asserts what a Lambda caller sees. The suites that deploy it (test_runtimes_conformance.py
for zips, test_images_runtime.py for images) call these with the function they deployed,
its Kind, and the Timeout and MemorySize they gave it.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import runtimes_functions as fn
from helpers import invoke

LOG_STREAM = r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}"


def ok(lam: Any, name: str, event: Any, **params: Any) -> tuple[Any, str]:
    r = invoke(lam, name, event, **params)
    assert r.status == 200 and r.function_error is None, (r.function_error, r.payload[:3000], r.log)
    return r.result, r.request_id


def between_start_and_end(log: str, request_id: str) -> list[str]:
    lines = log.split("\n")
    start = lines.index(next(line for line in lines if line.startswith(f"START RequestId: {request_id} ")))
    end = lines.index(f"END RequestId: {request_id}")
    assert lines[end + 1].startswith(f"REPORT RequestId: {request_id}\tDuration: "), lines
    return lines[start + 1:end]


def result_round_trips(lam: Any, name: str) -> None:
    event = {"op": "echo", "text": "héllo ✓", "n": [1, 2.5, None, True], "nested": {"a": {"b": "c"}}}
    assert ok(lam, name, event)[0] == event


def context_is_lambdas(lam: Any, name: str, timeout_s: int, memory_mb: int, text: str = "héllo ✓") -> None:
    """The context object; `text` goes through the client context (some runtimes take ASCII only)."""
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    client_context = {"custom": {"k": "v", "text": text}, "env": {"e": "1"}}
    custom = base64.b64encode(json.dumps(client_context, ensure_ascii=False).encode()).decode()
    context, request_id = ok(lam, name, {"op": "context"}, ClientContext=custom)
    assert context["request_id"] == request_id
    assert context["invoked_arn"] == arn
    assert 0 < context["remaining_ms"] <= timeout_s * 1000
    assert (context["function_name"], context["function_version"], context["memory_mb"]) == (
        name, "$LATEST", str(memory_mb))
    assert context["log_group"] == f"/aws/lambda/{name}"
    assert re.fullmatch(LOG_STREAM, context["log_stream"]), context
    assert context["trace_id"].startswith("Root=1-"), context
    assert context["client_context"]["custom"] == {"k": "v", "text": text}


def error_in_the_runtimes_format(lam: Any, name: str, kind: fn.Kind) -> None:
    r = invoke(lam, name, {"op": "fail"}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    fn.error_matches(kind, r.result, r.request_id)
    assert f"END RequestId: {r.request_id}" in r.log
    assert ok(lam, name, {"op": "echo"})[0] == {"op": "echo"}  # the environment survives a function error


def warm_state_survives(lam: Any, name: str) -> None:
    first, _ = ok(lam, name, {"op": "count"})
    assert ok(lam, name, {"op": "count"})[0]["count"] == first["count"] + 1


def log_lines(lam: Any, name: str, kind: fn.Kind, memory_mb: int) -> None:
    ok(lam, name, {"op": "echo"})  # warm up: the next invocation's log is its own only
    r = invoke(lam, name, {"op": "log"}, LogType="Tail")
    assert r.function_error is None and r.result == "logged"
    lines = between_start_and_end(r.log, r.request_id)
    assert len(lines) == 1 and fn.log_line_matches(kind, lines[0], r.request_id), lines
    assert re.search(rf"REPORT RequestId: {r.request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
                     rf"Memory Size: {memory_mb} MB\tMax Memory Used: \d+ MB\t", r.log), r.log


def timeout_replaces_the_environment(lam: Any, name: str, timeout_s: int) -> None:
    r = invoke(lam, name, {"op": "sleep"}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result == {
        "errorMessage": f"RequestId: {r.request_id} Error: Task timed out after {timeout_s}.00 seconds",
        "errorType": "Sandbox.Timedout",
    }
    assert f"Task timed out after {timeout_s}.00 seconds" in r.log
    assert ok(lam, name, {"op": "echo"})[0] == {"op": "echo"}  # a new environment


def exit_replaces_the_environment(lam: Any, name: str) -> None:
    r = invoke(lam, name, {"op": "exit"}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result == {
        "errorMessage": f"RequestId: {r.request_id} Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
    }
    assert ok(lam, name, {"op": "count"})[0] == {"count": 1}  # a fresh environment
