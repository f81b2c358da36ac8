"""Load on a Lambda-compatible Invoke endpoint: sequential keep-alive round trips, and concurrent load.

Concurrent load comes from `wrk` (one small C process, far lighter than Python clients on a
two-core machine) with a Lua script that posts the event and counts failed invocations; only
when `wrk` is missing do Python client processes stand in, and the result says so.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Invoker, percentile

EVENT = b'{"ping": 1}'

# Counts responses that are not a successful invocation (status or X-Amz-Function-Error), and
# prints one machine-readable line at the end.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0 end
function response(status, headers, body)
  if status ~= 200 then failed = failed + 1; return end
  for name, _ in pairs(headers) do
    if string.lower(name) == "x-amz-function-error" then failed = failed + 1; return end
  end
end
function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + t:get("failed") end
  local e = summary.errors
  io.write(string.format("BENCH requests=%%d failed=%%d socket_errors=%%d duration_us=%%d p50_us=%%d p99_us=%%d\\n",
    summary.requests, failed_total, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
"""


def summary(times_ms: list[float]) -> dict[str, Any]:
    """Percentiles of latency samples in milliseconds."""
    return {
        "n": len(times_ms), "p50": percentile(times_ms, 50), "p90": percentile(times_ms, 90),
        "p99": percentile(times_ms, 99), "min": min(times_ms, default=float("nan")),
        "max": max(times_ms, default=float("nan")),
    }


def sequential(port: int, function: str, n: int, warmup: int) -> dict[str, Any]:
    """`n` invocations one after another on one keep-alive connection, after `warmup` untimed ones."""
    invoke = Invoker(port, function)
    for _ in range(warmup):
        invoke(EVENT)
    times: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        invoke(EVENT)
        times.append((time.perf_counter() - t0) * 1000)
    invoke.conn.close()
    return summary(times)


def first_invocation_ms(port: int, function: str) -> float:
    """One invocation on a new connection, as a client that just deployed the function sends it."""
    invoke = Invoker(port, function)
    t0 = time.perf_counter()
    invoke(EVENT)
    elapsed = (time.perf_counter() - t0) * 1000
    invoke.conn.close()
    return elapsed


def concurrent(port: int, function: str, clients: int, seconds: float, threads: int) -> dict[str, Any]:
    """Invocations from `clients` keep-alive connections for `seconds`, after a one-second untimed warm-up."""
    if shutil.which("wrk") is None:
        return _python_clients(port, function, clients, seconds)
    _wrk(port, function, clients, 1.0, threads)
    return _wrk(port, function, clients, seconds, threads)


def _wrk(port: int, function: str, clients: int, seconds: float, threads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(WRK_SCRIPT % {"body": _lua_string(EVENT.decode())})
        url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
        done = subprocess.run(
            ["wrk", "-t", str(min(threads, clients)), "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
             "--timeout", "30s", "-s", str(script), url],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    match = re.search(r"BENCH (.*)", done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    figures = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    duration = figures["duration_us"] / 1e6
    ok = figures["requests"] - figures["failed"]
    return {
        "generator": f"wrk -t{min(threads, clients)} -c{clients}",
        "clients": clients, "seconds": duration, "requests": figures["requests"],
        "failed": figures["failed"] + figures["socket_errors"],
        "invokes_per_s": ok / duration,
        "latency_p50_ms": figures["p50_us"] / 1000, "latency_p99_ms": figures["p99_us"] / 1000,
    }


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _client(port: int, function: str, seconds: float, start_at: float, out: Any) -> None:
    invoke = Invoker(port, function)
    invoke(EVENT)
    while time.time() < start_at:
        time.sleep(0.001)
    latencies: list[float] = []
    failed = 0
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        try:
            invoke(EVENT)
        except RuntimeError:
            failed += 1
            continue
        latencies.append((time.perf_counter() - t0) * 1000)
    out.put((latencies, failed))


def _python_clients(port: int, function: str, clients: int, seconds: float) -> dict[str, Any]:
    queue: Any = multiprocessing.Queue()
    start_at = time.time() + 1.5
    procs = [multiprocessing.Process(target=_client, args=(port, function, seconds, start_at, queue), daemon=True)
             for _ in range(clients)]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=seconds + 120) for _ in procs]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
    latencies = [x for r in results for x in r[0]]
    return {
        "generator": f"{clients} Python client processes (wrk not found)",
        "clients": clients, "seconds": seconds, "requests": len(latencies) + sum(r[1] for r in results),
        "failed": sum(r[1] for r in results), "invokes_per_s": len(latencies) / seconds,
        "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99),
    }
