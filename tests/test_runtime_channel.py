"""The built-in Python runtime's own socket to the worker, seen from a function that abuses it.

A Python function with no extension takes its events on a socket straight from the worker
(no HTTP, no relay through the init). That socket is in the function's own process, so the
function's code can write to it: whatever it writes, the platform keeps its limits, bills
what it measured itself, and stays up.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from helpers import create_function, invoke, invoke_ok


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


ABUSER = r'''
import json, os, socket, struct, time

def sockets():
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink("/proc/self/fd/" + name).startswith("socket:"):
                found.append(int(name))
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found

def runtime_socket():
    return (sockets() or [None])[0]

def frame(kind, meta, body=b""):
    raw = json.dumps(meta).encode()
    return struct.pack("!BII", kind, len(raw), len(body)) + raw + body

RESPONSE, INVOKE = 12, 1

def handler(event, context):
    fd = runtime_socket()
    what = event["do"]
    if what == "count":
        return len(sockets())
    if what == "family":  # a socket pair to the worker, not a TCP connection to the Runtime API
        s = socket.socket(fileno=os.dup(fd))
        family = s.family.name
        s.close()
        return family
    if what == "underbill":  # answers by itself, claiming it took no time at all
        time.sleep(0.3)
        os.write(fd, frame(RESPONSE, {"request_id": context.aws_request_id, "content_type": "application/json",
                                      "duration_ns": 1}, b'"forged"'))
        time.sleep(0.5)
        return "late"  # the runtime's own answer comes after, and answers nothing any more
    if what == "huge":  # announces a 7 MB result
        os.write(fd, struct.pack("!BII", RESPONSE, 2, 7 * 1024 * 1024) + b"{}")
        time.sleep(30)
    if what == "invoke":  # a frame only the worker sends
        os.write(fd, frame(INVOKE, {"request_id": "x"}))
        time.sleep(30)
    if what == "garbage":
        os.write(fd, struct.pack("!BII", RESPONSE, 5, 0) + b"{not}")
        time.sleep(30)
    if what == "wrong-types":
        os.write(fd, frame(RESPONSE, {"request_id": 7, "content_type": ["x"]}, b"1"))
        time.sleep(30)
    if what == "fork-and-exit":  # a child keeps the socket open after the runtime exits
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        os._exit(3)
    return "ok"
'''


@pytest.fixture(scope="module")
def abuser(lam: Any) -> str:
    return create_function(lam, ABUSER, Timeout=10)


def test_the_runtime_has_one_socket_and_the_function_works_through_it(lam: Any, abuser: str) -> None:
    assert invoke_ok(lam, abuser, {"do": "count"}) == 1
    assert invoke_ok(lam, abuser, {"do": "family"}) == "AF_UNIX"
    assert invoke_ok(lam, abuser, {"do": "nothing"}) == "ok"


def test_a_function_cannot_set_its_billed_duration(lam: Any, abuser: str) -> None:
    r = invoke(lam, abuser, {"do": "underbill"}, LogType="Tail")
    assert (r.function_error, r.result) == (None, "forged")  # its own answer, as it may give one
    report = re.search(r"REPORT RequestId: \S+\tDuration: ([\d.]+) ms\tBilled Duration: (\d+) ms", r.log)
    assert report is not None, r.log
    assert float(report.group(1)) >= 300 and int(report.group(2)) >= 300  # measured by the platform
    # The next event waits in the same environment until the handler is done; the late answer
    # to the earlier one is not taken for it.
    assert invoke_ok(lam, abuser, {"do": "nothing"}) == "ok"


def test_an_announced_result_over_6_mb_is_refused_before_it_is_read(lam: Any, abuser: str) -> None:
    r = invoke(lam, abuser, {"do": "huge"})
    assert r.function_error == "Unhandled"
    assert r.result == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size (7340032 bytes) exceeded maximum allowed payload size "
                        "(6291556 bytes).",
    }
    assert invoke_ok(lam, abuser, {"do": "nothing"}) == "ok"


@pytest.mark.parametrize("what", ["invoke", "garbage", "wrong-types"])
def test_a_broken_frame_ends_the_environment_not_the_server(lam: Any, abuser: str, what: str) -> None:
    r = invoke(lam, abuser, {"do": what})
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Runtime.ExitError"
    assert invoke_ok(lam, abuser, {"do": "nothing"}) == "ok"  # a new environment


def test_an_exit_is_reported_while_a_child_still_holds_the_socket(lam: Any, abuser: str) -> None:
    r = invoke(lam, abuser, {"do": "fork-and-exit"})
    # Not Sandbox.Timedout: the exit does not wait for the child (which lives past the timeout).
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in r.result["errorMessage"]
    assert invoke_ok(lam, abuser, {"do": "nothing"}) == "ok"


def test_the_rehearsal_of_a_pre_built_environment_runs_both_ways_in(tmp_path: Any) -> None:
    """Over HTTP and over frames, to the end (a rehearsal that breaks says nothing by itself)."""
    import subprocess
    import sys

    script = ("import os\nfrom lambdastack.runtime.python import rehearsal\n"
              "before = dict(os.environ)\nprint(rehearsal.rehearse(), dict(os.environ) == before)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_a_snapstart_copy_takes_its_events_on_a_socket_of_its_own(lam: Any, server: Any) -> None:
    """A copy of a SnapStart version's template gets its own socket too, and the same checks."""
    import requests

    runtime = "python3.12"
    if runtime not in requests.get(f"{server.url}/_lambdastack/health", timeout=5).json().get("runtimes", []):
        pytest.skip(f"{runtime} is not installed on this host")
    name = create_function(lam, ABUSER, runtime=runtime, Timeout=10, SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    r = invoke(lam, name, {"do": "count"}, Qualifier=version, LogType="Tail")
    assert (r.function_error, r.result) == (None, 1), r.payload
    assert "Restore Duration" in r.log
    assert invoke_ok(lam, name, {"do": "family"}, Qualifier=version) == "AF_UNIX"
    r = invoke(lam, name, {"do": "huge"}, Qualifier=version)
    assert r.result["errorType"] == "Function.ResponseSizeTooLarge"
    assert invoke_ok(lam, name, {"do": "nothing"}, Qualifier=version) == "ok"
