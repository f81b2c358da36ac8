"""Admission by real memory: environments are held by what they use, not by their MemorySize.

The servers here consider only a small part of the host's memory (`--memory-limit`), so
that functions which really allocate can fill it without filling the host.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

from botocore.exceptions import ClientError
from helpers import Server, create_function, invoke, stored_log

# Allocates and touches `mb` MB (every byte written) and keeps it while the environment lives.
HOLDS = (
    "import time\nHELD = []\n"
    "def handler(event, context):\n"
    "    if not HELD:\n"
    "        HELD.append(b'x' * (event['mb'] * 1024 * 1024))\n"
    "    time.sleep(event.get('sleep', 0))\n"
    "    return len(HELD[0]) // (1024 * 1024)\n"
)
# 1,200 MB considered, 10% reserved: 1,080 MB for environments, four that hold 200 MB of 256.
SMALL_HOST = ("--memory-limit", "1200")


def warm(log: str) -> bool:
    """Whether the invocation whose tail is `log` ran in an environment that already existed."""
    [report] = [line for line in log.splitlines() if line.startswith("REPORT ")]
    return "Init Duration" not in report


def ok(lam: Any, name: str, event: Any) -> tuple[Any, bool]:
    r = invoke(lam, name, event, LogType="Tail")
    assert r.status == 200 and r.function_error is None, (r.payload, r.log)
    return r.result, warm(r.log)


def test_idle_environments_are_evicted_least_recently_used_first_and_none_is_oom_killed(
        private_server: Any) -> None:
    server: Server = private_server(*SMALL_HOST)
    lam = server.client()
    names = [create_function(lam, HOLDS, MemorySize=256, Timeout=30) for _ in range(6)]
    event = {"mb": 200}
    for name in names[:4]:
        assert ok(lam, name, event) == (200, False)
    for name in names[:4]:
        assert ok(lam, name, event) == (200, True)  # four that hold 200 MB each fit
    # A fifth does not fit beside them: the least recently used (the first) makes room.
    assert ok(lam, names[4], event) == (200, False)
    assert ok(lam, names[1], event) == (200, True)
    assert ok(lam, names[0], event) == (200, False)  # evicted, so a cold start; the next LRU is names[2]
    assert ok(lam, names[3], event) == (200, True)
    assert ok(lam, names[1], event) == (200, True)
    assert ok(lam, names[2], event) == (200, False)
    # The memory limit of each environment still holds: beyond it is Lambda's OutOfMemory.
    over = invoke(lam, names[5], {"mb": 300}, LogType="Tail")
    assert over.function_error == "Unhandled" and over.result["errorType"] == "Runtime.OutOfMemory", over.payload
    # No environment that stayed within its limit was killed: evictions end them quietly.
    for name in names[:5]:
        lines = [line for stream in stored_log(server, lam, name).values() for line in stream]
        assert lines and not [line for line in lines if "Runtime.OutOfMemory" in line or "exited" in line]


def concurrently(lam: Any, name: str, count: int, event: dict[str, Any]) -> list[Any]:
    """`count` invocations at once (the first alone, so that it surely starts first)."""
    def one(_: int) -> Any:
        try:
            return invoke(lam, name, event).result
        except ClientError as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        first = pool.submit(one, 0)
        time.sleep(0.5)
        rest = [pool.submit(one, i) for i in range(1, count)]
        return [first.result(), *(f.result() for f in rest)]


def test_beyond_what_fits_invocations_wait_briefly_then_are_throttled(private_server: Any) -> None:
    server: Server = private_server(*SMALL_HOST)
    lam = server.client()
    name = create_function(lam, HOLDS, MemorySize=256, Timeout=30)
    # Busy for longer than an invocation waits for room (2 s): two of six are throttled.
    results = concurrently(lam, name, 6, {"mb": 200, "sleep": 4})
    assert results.count(200) == 4, results
    throttles = [r for r in results if isinstance(r, ClientError)]
    assert len(throttles) == 2, results
    for e in throttles:
        assert e.response["Error"]["Code"] == "TooManyRequestsException"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert e.response["Reason"] == "ConcurrentInvocationLimitExceeded"
    # Busy briefly: the ones that do not fit wait for an environment of their function to
    # come free and run there, rather than being throttled or evicting anything.
    results = concurrently(lam, name, 6, {"mb": 200, "sleep": 0.8})
    assert results == [200] * 6, results


def test_many_small_idle_functions_stay_warm(private_server: Any) -> None:
    """60 functions of 256 MB where MemorySize would let 20 be warm (5,700 MB, 10% reserved):
    each uses a few MB, so all stay warm."""
    server: Server = private_server("--memory-limit", "5700")
    lam = server.client()
    names = [create_function(lam, "def handler(event, context):\n    return 1\n", MemorySize=256)
             for _ in range(60)]
    for name in names:
        assert ok(lam, name, {}) == (1, False)
    cold = [name for name in names if not ok(lam, name, {})[1]]
    assert cold == []


def test_memory_settings_are_validated(tmp_path: Any) -> None:
    import subprocess
    import sys

    for option, value in (("--memory-reserve", "150%"), ("--memory-reserve", "lots"), ("--memory-limit", "0")):
        done = subprocess.run([sys.executable, "-m", "lambdastack", "serve", "--data-dir", str(tmp_path / "d"),
                               option, value], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and option in done.stderr, done.stderr
