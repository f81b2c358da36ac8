"""What an invocation leaves in its log (LogType=Tail and the stored log streams), and the
Event and DryRun invocation types."""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

import pytest
from helpers import Server, create_function, invoke, stored_log, wait_for


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


PRINTS = '''
import os
print("init output")

def handler(event, context):
    print("working on", event.get("tag"))
    return {"stream": context.log_stream_name}
'''

REPORT = re.compile(
    r"^REPORT RequestId: (?P<rid>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\tMax Memory Used: (?P<used>\d+) MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?(?P<rest>.*)$"
)


def report_of(log: str) -> re.Match[str]:
    lines = [line for line in log.splitlines() if line.startswith("REPORT ")]
    assert len(lines) == 1, log
    match = REPORT.match(lines[0])
    assert match, lines[0]
    return match


def test_tail_has_start_output_end_and_report(lam: Any) -> None:
    name = create_function(lam, PRINTS)
    r = invoke(lam, name, {"tag": "first"}, LogType="Tail")
    rid = r.request_id
    lines = r.log.splitlines()
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert "working on first" in lines
    assert lines[-2] == f"END RequestId: {rid}"
    report = report_of(r.log)
    assert report["rid"] == rid
    assert report["memory"] == "128"
    assert 0 < int(report["used"]) <= 128
    duration, billed = float(report["duration"]), int(report["billed"])
    assert billed >= math.ceil(duration)
    assert report["init"] is not None, "a cold start reports its Init Duration"
    assert float(report["init"]) > 0
    assert r.log.endswith("\t\n") or r.log.endswith("\t")


def test_init_duration_only_on_a_cold_start(lam: Any) -> None:
    name = create_function(lam, PRINTS)
    cold = invoke(lam, name, {"tag": "a"}, LogType="Tail")
    warm = invoke(lam, name, {"tag": "b"}, LogType="Tail")
    assert report_of(cold.log)["init"] is not None
    assert report_of(warm.log)["init"] is None
    assert cold.result["stream"] == warm.result["stream"]
    assert "init output" not in warm.log


def test_no_log_without_tail(lam: Any) -> None:
    name = create_function(lam, PRINTS)
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert "LogResult" not in r
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="None")
    assert "LogResult" not in r


def test_tail_is_the_last_4_kb(lam: Any) -> None:
    source = "def handler(event, context):\n    for i in range(400):\n        print('line %04d ' % i + 'x' * 40)\n"
    name = create_function(lam, source)
    r = invoke(lam, name, LogType="Tail")
    assert len(r.log.encode()) <= 4096
    assert "line 0399" in r.log and "line 0000" not in r.log
    assert report_of(r.log)["rid"] == r.request_id


def test_stored_log_has_one_stream_per_environment(server: Server, lam: Any) -> None:
    name = create_function(lam, PRINTS)
    first = invoke(lam, name, {"tag": "one"})
    second = invoke(lam, name, {"tag": "two"})
    stream = first.result["stream"]
    assert second.result["stream"] == stream
    streams = stored_log(server, lam, name)
    assert list(streams) == [stream]
    lines = streams[stream]
    assert "init output" in lines
    assert lines.count("init output") == 1
    for r, tag in ((first, "one"), (second, "two")):
        rid = r.request_id
        start = lines.index(f"START RequestId: {rid} Version: $LATEST")
        end = lines.index(f"END RequestId: {rid}")
        assert start < lines.index(f"working on {tag}") < end
        assert lines[end + 1].startswith(f"REPORT RequestId: {rid}\t")


def test_event_invocation_is_accepted_and_runs(server: Server, lam: Any) -> None:
    name = create_function(lam, PRINTS)
    tag = uuid.uuid4().hex
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"tag": tag}).encode())
    assert r["StatusCode"] == 202
    assert "FunctionError" not in r
    rid = r["ResponseMetadata"]["RequestId"]

    def ran() -> list[str] | None:
        for lines in stored_log(server, lam, name).values():
            if f"working on {tag}" in lines and any(line.startswith(f"REPORT RequestId: {rid}") for line in lines):
                return lines
        return None

    assert wait_for(ran, timeout=15), stored_log(server, lam, name)


def test_event_invocation_runs_in_a_reusable_environment(server: Server, lam: Any) -> None:
    """Once the event has run, a synchronous call is served by the same warm environment."""
    source = (
        "import os\n"
        "def handler(event, context):\n"
        "    if 'mark' in event:\n"
        "        open('/tmp/mark', 'w').write(event['mark'])\n"
        "        return None\n"
        "    return open('/tmp/mark').read() if os.path.exists('/tmp/mark') else None\n"
    )
    name = create_function(lam, source)
    mark = uuid.uuid4().hex
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"mark": mark}))
    assert r["StatusCode"] == 202
    rid = r["ResponseMetadata"]["RequestId"]

    def reported() -> bool:
        return any(line.startswith(f"REPORT RequestId: {rid}")
                   for lines in stored_log(server, lam, name).values() for line in lines)

    assert wait_for(reported, timeout=15)
    assert invoke(lam, name).result == mark


def test_dry_run_is_204_and_runs_nothing(server: Server, lam: Any) -> None:
    name = create_function(lam, PRINTS)
    r = lam.invoke(FunctionName=name, InvocationType="DryRun")
    assert r["StatusCode"] == 204
    assert stored_log(server, lam, name) == {}


@pytest.mark.parametrize("invocation_type", ["Event", "DryRun"])
def test_event_and_dry_run_replies_have_an_empty_body(lam: Any, invocation_type: str) -> None:
    name = create_function(lam, PRINTS)
    r = lam.invoke(FunctionName=name, InvocationType=invocation_type, Payload=b"{}")
    assert r["Payload"].read() == b""


def test_unhandled_error_is_one_log_event(server: Server, lam: Any) -> None:
    """The runtime joins an error's lines with '\\r' so that it stays one log event, as in CloudWatch."""
    name = create_function(lam, "def handler(event, context):\n    raise ValueError('boom')\n")
    invoke(lam, name)
    [lines] = stored_log(server, lam, name).values()
    [record] = [line for line in lines if line.startswith("[ERROR] ValueError: boom")]
    assert "\rTraceback (most recent call last):\r" in record


def test_tail_of_a_failed_init_shows_the_error(lam: Any) -> None:
    name = create_function(lam, "import no_such_module_xyz\n")
    r = invoke(lam, name, LogType="Tail")
    assert r.result["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app': No module named 'no_such_module_xyz'" in r.log
