"""Limits enforced as Lambda enforces them: memory, payload sizes, /tmp size, processes, CPU."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import ECHO, Server, create_function, invoke, invoke_ok


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


SYNC_LIMIT = 6 * 1024 * 1024  # 6,291,456 bytes
EVENT_LIMIT = 1024 * 1024

HOG = '''
def handler(event, context):
    chunks = []
    for _ in range(event.get("mb", 0) // 16):
        chunks.append(b"\\x01" * (16 << 20))  # written, so the pages are really used
    return len(chunks) * 16
'''


def service_error(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    e = info.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


# -- memory ---------------------------------------------------------------------------------------


def test_out_of_memory_is_killed_and_the_platform_goes_on(server: Server, lam: Any) -> None:
    name = create_function(lam, HOG, MemorySize=128, Timeout=30)
    other = create_function(lam, ECHO)
    assert invoke_ok(lam, name, {"mb": 32}) == 32
    r = invoke(lam, name, {"mb": 256}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result["errorType"] == "Runtime.OutOfMemory"
    assert r.result["errorMessage"] == f"RequestId: {r.request_id} Error: Runtime exited with error: signal: killed"
    assert "Max Memory Used: 128 MB" in r.log
    assert "Memory Size: 128 MB" in r.log
    # The function itself and everything else keep working.
    assert invoke_ok(lam, name, {"mb": 16}) == 16
    assert invoke_ok(lam, other, {"still": "here"}) == {"still": "here"}
    assert requests.get(server.url + "/_lambdastack/health", timeout=5).json()["status"] == "ok"


def test_memory_size_is_the_limit_not_less(lam: Any) -> None:
    """A function may use most of its MemorySize."""
    name = create_function(lam, HOG, MemorySize=512, Timeout=30)
    r = invoke(lam, name, {"mb": 384}, LogType="Tail")
    assert r.result == 384
    used = int(r.log.split("Max Memory Used: ")[1].split(" MB")[0])
    assert 384 <= used <= 512


# -- payload sizes --------------------------------------------------------------------------------


def json_string_of(total_size: int) -> bytes:
    return b'"' + b"a" * (total_size - 2) + b'"'


def test_request_over_6_mb_is_413(lam: Any) -> None:
    name = create_function(lam, ECHO)
    code, message, status = service_error(lam.invoke, FunctionName=name, Payload=json_string_of(SYNC_LIMIT + 1))
    assert (code, status) == ("RequestEntityTooLargeException", 413)  # as AWS answers it
    assert message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"


def test_request_just_under_6_mb_round_trips(lam: Any) -> None:
    name = create_function(lam, ECHO, MemorySize=512)
    payload = json_string_of(SYNC_LIMIT - 1000)
    r = invoke(lam, name, raw=payload)
    assert r.function_error is None
    assert r.payload == payload


def test_event_over_1_mb_is_413(lam: Any) -> None:
    name = create_function(lam, ECHO)
    code, message, status = service_error(lam.invoke, FunctionName=name, InvocationType="Event",
                                          Payload=json_string_of(EVENT_LIMIT + 1))
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == (f"{EVENT_LIMIT + 1} byte payload is too large for the Event invocation type"
                       f" (limit {EVENT_LIMIT} bytes)")
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json_string_of(EVENT_LIMIT - 100))
    assert r["StatusCode"] == 202


RESPONDER = "def handler(event, context):\n    return 'x' * event['size']\n"


def test_response_over_6_mb_is_a_function_error(lam: Any) -> None:
    name = create_function(lam, RESPONDER, MemorySize=512)
    assert len(invoke_ok(lam, name, {"size": 6_000_000})) == 6_000_000
    r = invoke(lam, name, {"size": 7_000_000})
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556" in r.result["errorMessage"]


def test_invocation_after_a_too_large_response_succeeds(lam: Any) -> None:
    name = create_function(lam, RESPONDER, MemorySize=512)
    assert invoke(lam, name, {"size": 7_000_000}).result["errorType"] == "Function.ResponseSizeTooLarge"
    assert invoke_ok(lam, name, {"size": 3}) == "xxx"


# -- /tmp ------------------------------------------------------------------------------------------


TMP = '''
import errno, os

def handler(event, context):
    st = os.statvfs("/tmp")
    written, error = 0, None
    chunk = b"\\0" * (16 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            while written < event["mb"] << 20:
                f.write(chunk)
                f.flush()
                written += len(chunk)
    except OSError as e:
        error = errno.errorcode.get(e.errno)
    finally:
        if os.path.exists("/tmp/fill"):
            os.remove("/tmp/fill")
    return {"size_mb": st.f_bavail * st.f_frsize // (1 << 20), "written_mb": written >> 20, "error": error}
'''


def test_tmp_is_limited_to_ephemeral_storage(lam: Any) -> None:
    """A function can write EphemeralStorage MB to /tmp (what it finds free there), and no more."""
    name = create_function(lam, TMP, MemorySize=1024, Timeout=60, EphemeralStorage={"Size": 512})
    r = invoke_ok(lam, name, {"mb": 600})
    assert r["size_mb"] == 512
    assert r["error"] == "ENOSPC"
    assert 480 <= r["written_mb"] <= 512


def test_ephemeral_storage_setting_sizes_tmp(lam: Any) -> None:
    name = create_function(lam, TMP, EphemeralStorage={"Size": 2048})
    assert invoke_ok(lam, name, {"mb": 0})["size_mb"] == 2048


# -- processes -------------------------------------------------------------------------------------


FORK_BOMB = '''
import errno, os

def handler(event, context):
    r, w = os.pipe()
    children, failures, errors = [], 0, set()
    for _ in range(event["tries"]):
        try:
            pid = os.fork()
        except OSError as e:
            failures += 1
            errors.add(errno.errorcode.get(e.errno))
            if failures >= 200:
                break
            continue
        if pid == 0:
            os.close(w)
            os.read(r, 1)  # wait for the parent to let go
            os._exit(0)
        children.append(pid)
    os.close(w)
    for pid in children:
        os.waitpid(pid, 0)
    os.close(r)
    return {"forked": len(children), "failures": failures, "errors": sorted(errors)}
'''


def test_fork_bomb_hits_the_pids_limit(server: Server, lam: Any) -> None:
    """Up to 5000 forks (stopping after 200 refusals): the pids limit refuses them, nothing else breaks."""
    name = create_function(lam, FORK_BOMB, MemorySize=1769, Timeout=120)
    other = create_function(lam, ECHO)
    r = invoke_ok(lam, name, {"tries": 5000})
    assert r["failures"] > 0 and r["errors"] == ["EAGAIN"], r
    assert 100 < r["forked"] < 5000
    # The environment, the platform and the other functions carry on.
    assert invoke_ok(lam, name, {"tries": 10}) == {"forked": 10, "failures": 0, "errors": []}
    assert invoke_ok(lam, other, [1]) == [1]
    assert requests.get(server.url + "/_lambdastack/health", timeout=5).status_code == 200
    assert subprocess.run(["true"], check=False).returncode == 0  # the host can still start processes


# -- CPU -------------------------------------------------------------------------------------------


BUSY = '''
import time

def handler(event, context):
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - wall0 < event["seconds"]:
        pass
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)
'''


REFERENCE = (
    "import time\n"
    "wall0, cpu0 = time.monotonic(), time.process_time()\n"
    "while time.monotonic() - wall0 < 1.0:\n"
    "    pass\n"
    "print((time.process_time() - cpu0) / (time.monotonic() - wall0))\n"
)


def test_cpu_share_is_proportional_to_memory(lam: Any) -> None:
    """128 MB gets a small slice of a core, 1,769 MB about a full one.

    A busy loop on the host runs alongside the 1,769 MB function: on a host loaded by other
    work, "a full core" means as much as an unconstrained process gets at the same time.
    """
    small = create_function(lam, BUSY, MemorySize=128, Timeout=30)
    full = create_function(lam, BUSY, MemorySize=1769, Timeout=30)
    invoke_ok(lam, small, {"seconds": 0.01})  # cold starts out of the way
    invoke_ok(lam, full, {"seconds": 0.01})
    small_share = invoke_ok(lam, small, {"seconds": 1.0})
    reference = subprocess.Popen([sys.executable, "-c", REFERENCE], stdout=subprocess.PIPE, text=True)
    full_share = invoke_ok(lam, full, {"seconds": 1.0})
    host_share = min(1.0, float(reference.communicate(timeout=30)[0]))
    assert small_share < 0.3, f"128 MB got {small_share:.2f} of a core"
    assert full_share > 0.6 * host_share, f"1769 MB got {full_share:.2f} of a core (host process: {host_share:.2f})"
    assert full_share > 3 * small_share, (small_share, full_share)
