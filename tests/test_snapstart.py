"""SnapStart: a published version is initialized once; its environments are copies of it.

Everything is observed as a Lambda user would: PublishVersion's state, the waiter, what
the function sees (the hooks of snapshot_restore_py, its random state, its environment,
/tmp, its privileges) and the REPORT lines of its log.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import ROLE, create_function, invoke, invoke_ok, python_zip, stored_log, unique

RUNTIME = "python3.12"

HOOKS = """
import os, random, time
from snapshot_restore_py import register_after_restore, register_before_snapshot

CALLS = []
INIT_DRAW = random.random()
INIT_AT = time.time()
with open("/tmp/written-during-init", "w") as f:
    f.write("init")

@register_before_snapshot
def first_registered():
    CALLS.append("before:first")

@register_before_snapshot
def second_registered():
    CALLS.append("before:second")

def after(label):
    CALLS.append("after:" + label)

register_after_restore(after, "one")
register_after_restore(after, label="two")

def read_status(field):
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith(field + ":"))

def handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("write"):
        with open("/tmp/" + event["write"], "w") as f:
            f.write("x")
    try:
        os.unshare(os.CLONE_NEWUSER)
        unshare = "allowed"
    except PermissionError:
        unshare = "refused"
    return {
        "calls": CALLS, "init_draw": INIT_DRAW, "draw": random.random(), "init_at": INIT_AT,
        "type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
        "stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        "tmp": sorted(os.listdir("/tmp")), "pid": os.getpid(), "uid": os.getuid(),
        "cap_eff": read_status("CapEff"), "cap_bnd": read_status("CapBnd"), "unshare": unshare,
    }
"""


@pytest.fixture(scope="module")
def snapstart_runtime(server: Any) -> str:
    runtimes = requests.get(f"{server.url}/_lambdastack/health", timeout=5).json().get("runtimes", [])
    if RUNTIME not in runtimes:
        pytest.skip(f"{RUNTIME} is not installed on this host")
    return RUNTIME


def publish_active(lam: Any, name: str) -> str:
    published = lam.publish_version(FunctionName=name)
    assert published["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    version: str = published["Version"]
    lam.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier=version, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    return version


def snapstart_function(lam: Any, source: str, **config: Any) -> str:
    return create_function(lam, source, runtime=RUNTIME, SnapStart={"ApplyOn": "PublishedVersions"}, **config)


def report_of(log: str) -> str:
    return next(line for line in log.splitlines() if line.startswith("REPORT"))


def test_copies_run_the_hooks_and_have_distinct_random_state(
    plain_lam: Any, server: Any, snapstart_runtime: str
) -> None:
    name = snapstart_function(plain_lam, HOOKS, Timeout=10)
    assert plain_lam.get_function_configuration(FunctionName=name)["SnapStart"] == {
        "ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    version = publish_active(plain_lam, name)

    # Three invocations at once: three copies of the one initialized template.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: invoke(plain_lam, name, {"sleep": 1}, Qualifier=version, LogType="Tail"),
                             range(3)))
    results = [r.result for r in runs]
    for r in runs:
        assert r.function_error is None, r.payload
        report = report_of(r.log)
        assert "Restore Duration: " in report and "Billed Restore Duration: " in report, report
        assert "Init Duration" not in report
    # Init ran once, before the snapshot: every copy has its memory ...
    assert len({r["init_at"] for r in results}) == 1
    assert len({r["init_draw"] for r in results}) == 1
    # ... the before-snapshot hooks ran in reverse order of registration, the after-restore
    # ones (with their arguments) in order, once in each copy ...
    for r in results:
        assert r["calls"] == ["before:second", "before:first", "after:one", "after:two"]
    # ... and each copy was reseeded.
    assert len({r["draw"] for r in results}) == 3
    assert all(r["type"] == "snap-start" for r in results)
    assert all(r["stream"] is None for r in results)  # not set for SnapStart functions, as on Lambda

    # A warm invocation is no restore.
    warm = invoke(plain_lam, name, {}, Qualifier=version, LogType="Tail")
    assert "Restore Duration" not in report_of(warm.log)

    # The template's init is logged once, with its INIT_REPORT; each copy's stream starts
    # with its RESTORE_REPORT.
    streams = stored_log(server, plain_lam, name)
    init_reports = [line for lines in streams.values() for line in lines if line.startswith("INIT_REPORT")]
    assert len(init_reports) == 1 and "Phase: init" in init_reports[0] and "Status: success" in init_reports[0]
    copies = [lines for lines in streams.values() if any(line.startswith("START") for line in lines)]
    assert len(copies) == 3
    for lines in copies:
        assert lines[0].startswith("RESTORE_REPORT Restore Duration: ") and lines[1].startswith("START"), lines[:2]


def test_each_copy_is_an_isolated_environment(plain_lam: Any, snapstart_runtime: str) -> None:
    name = snapstart_function(plain_lam, HOOKS, Timeout=10)
    version = publish_active(plain_lam, name)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first, second = pool.map(
            lambda label: invoke_ok(plain_lam, name, {"sleep": 1, "write": label}, Qualifier=version),
            ["a", "b"],
        )
    # Its own /tmp (holding what init wrote there) and its own PID namespace.
    assert first["tmp"] == ["a", "written-during-init"]
    assert second["tmp"] == ["b", "written-during-init"]
    assert first["pid"] == second["pid"] == 2  # the runtime, after the copy's own init
    # No capabilities, none to gain, and no new namespaces: the template's powers are gone.
    assert first["cap_eff"] == "0000000000000000" and first["cap_bnd"] == "0000000000000000"
    assert first["unshare"] == "refused"
    assert first["uid"] != 0


def test_a_version_is_pending_until_its_snapshot_is_ready(plain_lam: Any, snapstart_runtime: str) -> None:
    slow_init = "import time\ntime.sleep(2)\ndef handler(event, context):\n    return 'ready'\n"
    name = snapstart_function(plain_lam, slow_init)
    published = plain_lam.publish_version(FunctionName=name)
    assert published["State"] == "Pending"
    assert published["LastUpdateStatus"] == "InProgress"
    with pytest.raises(ClientError) as e:
        plain_lam.invoke(FunctionName=name, Qualifier=published["Version"], Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "SnapStartNotReadyException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    plain_lam.get_waiter("published_version_active").wait(
        FunctionName=name, Qualifier=published["Version"], WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    started = time.monotonic()
    r = invoke(plain_lam, name, {}, Qualifier=published["Version"], LogType="Tail")
    assert r.result == "ready"
    assert time.monotonic() - started < 2  # the 2 s init is not run again
    assert "Restore Duration" in report_of(r.log)
    # $LATEST is not SnapStart: it initializes on demand, as on Lambda.
    latest = invoke(plain_lam, name, {}, LogType="Tail")
    assert "Init Duration" in report_of(latest.log)


def test_a_failing_before_snapshot_hook_fails_the_version(plain_lam: Any, snapstart_runtime: str) -> None:
    source = (
        "from snapshot_restore_py import register_before_snapshot\n"
        "@register_before_snapshot\n"
        "def broken():\n"
        "    raise ValueError('no snapshot today')\n"
        "def handler(event, context):\n"
        "    return 1\n"
    )
    name = snapstart_function(plain_lam, source)
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    config = plain_lam.get_function_configuration(FunctionName=name, Qualifier=version)
    deadline = time.monotonic() + 60
    while config["State"] == "Pending" and time.monotonic() < deadline:
        time.sleep(0.2)
        config = plain_lam.get_function_configuration(FunctionName=name, Qualifier=version)
    assert config["State"] == "Failed"
    assert config["StateReasonCode"] == "FunctionError.RuntimeInitError"
    assert "Runtime.BeforeSnapshotError" in config["StateReason"]
    assert "no snapshot today" in config["StateReason"]
    with pytest.raises(ClientError) as e:
        plain_lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"


def test_a_failing_after_restore_hook_fails_the_invocation(
    plain_lam: Any, server: Any, snapstart_runtime: str
) -> None:
    source = (
        "from snapshot_restore_py import register_after_restore\n"
        "@register_after_restore\n"
        "def broken():\n"
        "    raise RuntimeError('cannot reconnect')\n"
        "def handler(event, context):\n"
        "    return 1\n"
    )
    name = snapstart_function(plain_lam, source)
    version = publish_active(plain_lam, name)
    with pytest.raises(ClientError) as e:
        plain_lam.invoke(FunctionName=name, Qualifier=version, Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "SnapStartException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    lines = [line for lines in stored_log(server, plain_lam, name).values() for line in lines]
    assert any("cannot reconnect" in line for line in lines)
    assert any("Runtime.AfterRestoreError" in line for line in lines)


def test_a_copy_is_held_to_its_memory_size(plain_lam: Any, snapstart_runtime: str) -> None:
    source = (
        "def handler(event, context):\n"
        "    hog = bytearray(event['mb'] * 1024 * 1024)\n"
        "    return len(hog)\n"
    )
    name = snapstart_function(plain_lam, source, MemorySize=128, Timeout=10)
    version = publish_active(plain_lam, name)
    assert invoke_ok(plain_lam, name, {"mb": 16}, Qualifier=version) == 16 * 1024 * 1024
    r = invoke(plain_lam, name, {"mb": 400}, Qualifier=version)
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Runtime.OutOfMemory"


def test_snapstart_is_refused_where_lambda_refuses_it(plain_lam: Any) -> None:
    with pytest.raises(ClientError) as e:
        plain_lam.create_function(
            FunctionName=unique(), Runtime="python3.11", Role=ROLE, Handler="app.handler",
            Code={"ZipFile": python_zip("def handler(e, c):\n    return 1\n")},
            SnapStart={"ApplyOn": "PublishedVersions"},
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert e.value.response["Error"]["Message"] == "python3.11 is not supported for SnapStart enabled functions."


def test_a_template_is_made_again_after_a_restart(private_server: Any, snapstart_runtime: str) -> None:
    srv = private_server()
    lam = srv.client()
    name = snapstart_function(lam, HOOKS, Timeout=10)
    version = publish_active(lam, name)
    before = invoke_ok(lam, name, {}, Qualifier=version)
    srv.stop()
    srv.start()
    lam = srv.client()
    r = invoke(lam, name, {}, Qualifier=version, LogType="Tail")
    after = r.result
    assert after["calls"] == ["before:second", "before:first", "after:one", "after:two"]
    assert after["init_at"] > before["init_at"]  # a new template, initialized on the first cold start
    assert "Restore Duration" in report_of(r.log)
