"""The life of execution environments: warm reuse, freezing between invocations, one
invocation at a time (more environments for concurrent calls), replacement after a change."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from helpers import create_function, invoke, invoke_ok, python_zip


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


STATEFUL = '''
import os, time
INIT_PID = os.getpid()
count = 0

def handler(event, context):
    global count
    count += 1
    if "write" in event:
        with open("/tmp/state.txt", "w") as f:
            f.write(event["write"])
    time.sleep(event.get("sleep", 0))
    return {
        "count": count,
        "stream": context.log_stream_name,
        "pidns": os.readlink("/proc/self/ns/pid"),
        "same_process": os.getpid() == INIT_PID,
        "tmp": open("/tmp/state.txt").read() if os.path.exists("/tmp/state.txt") else None,
        "greeting": os.environ.get("GREETING"),
        "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        "version": "v1",
    }
'''


def test_warm_environment_is_reused(lam: Any) -> None:
    name = create_function(lam, STATEFUL)
    results = [invoke_ok(lam, name) for _ in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert len({r["stream"] for r in results}) == 1
    assert all(r["same_process"] for r in results)


def test_tmp_persists_while_warm(lam: Any) -> None:
    name = create_function(lam, STATEFUL)
    assert invoke_ok(lam, name, {"write": "kept"})["tmp"] == "kept"
    assert invoke_ok(lam, name)["tmp"] == "kept"


def test_new_function_starts_with_an_empty_tmp(lam: Any) -> None:
    writer = create_function(lam, STATEFUL)
    invoke_ok(lam, writer, {"write": "private"})
    reader = create_function(lam, STATEFUL)
    assert invoke_ok(lam, reader)["tmp"] is None


def test_background_thread_is_frozen_between_invocations(lam: Any) -> None:
    source = (
        "import threading, time\n"
        "ticks = 0\n"
        "def tick():\n"
        "    global ticks\n"
        "    while True:\n"
        "        time.sleep(0.01)\n"
        "        ticks += 1\n"
        "def handler(event, context):\n"
        "    if event.get('start'):\n"
        "        threading.Thread(target=tick, daemon=True).start()\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return ticks\n"
    )
    name = create_function(lam, source)
    before = invoke_ok(lam, name, {"start": True, "sleep": 0.2})
    assert before > 0  # the thread runs while the environment is busy
    time.sleep(0.5)  # idle: ~50 ticks if the environment were not frozen
    after = invoke_ok(lam, name)
    assert after - before < 15, f"{after - before} ticks while idle"
    resumed = invoke_ok(lam, name, {"sleep": 0.2})
    assert resumed - after >= 5, "the thread runs again once the environment is thawed"


def test_concurrent_invocations_get_separate_environments(lam: Any) -> None:
    name = create_function(lam, STATEFUL, Timeout=10)
    results: list[Any] = [None, None]

    def call(i: int) -> None:
        results[i] = invoke(lam, name, {"sleep": 1.0})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 and r.function_error is None for r in results), results
    a, b = (r.result for r in results)
    assert a["stream"] != b["stream"]
    assert a["pidns"] != b["pidns"]
    assert a["count"] == b["count"] == 1  # each environment ran its own init
    # Both stay warm: two more calls in sequence land in one of those two.
    again = invoke_ok(lam, name)
    assert again["stream"] in (a["stream"], b["stream"]) and again["count"] == 2


def test_configuration_change_gets_a_new_environment(lam: Any) -> None:
    name = create_function(lam, STATEFUL, Environment={"Variables": {"GREETING": "hello"}})
    first = invoke_ok(lam, name, {"write": "old"})
    assert (first["greeting"], first["memory"]) == ("hello", "128")
    lam.update_function_configuration(FunctionName=name, MemorySize=256,
                                      Environment={"Variables": {"GREETING": "bonjour"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    second = invoke_ok(lam, name)
    assert (second["greeting"], second["memory"]) == ("bonjour", "256")
    assert second["count"] == 1 and second["tmp"] is None
    assert second["stream"] != first["stream"]


def test_code_change_gets_a_new_environment(lam: Any) -> None:
    name = create_function(lam, STATEFUL)
    assert invoke_ok(lam, name)["version"] == "v1"
    lam.update_function_code(FunctionName=name, ZipFile=python_zip(STATEFUL.replace('"v1"', '"v2"')))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    r = invoke_ok(lam, name)
    assert (r["version"], r["count"]) == ("v2", 1)


def test_published_version_keeps_running_its_own_code(lam: Any) -> None:
    name = create_function(lam, STATEFUL)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=python_zip(STATEFUL.replace('"v1"', '"v2"')))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_ok(lam, name, Qualifier=version)["version"] == "v1"
    assert invoke_ok(lam, name)["version"] == "v2"
