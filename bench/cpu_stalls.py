"""CPU-quota stalls of small functions, and the CPU share each memory size gets.

    python -m bench.cpu_stalls [--calls 2000] [--connections 8] [--busy-seconds 2] [--port PORT]

Sequential: a 128 MB no-op invoked `--calls` times one after another on one keep-alive
connection (after 200 untimed calls), p50/p99/max. Parallel: `--connections` client
processes, each on its own connection and its own 128 MB no-op, `--calls` each. Both are
run again with 1,769 MB functions (a full core: never held back by their quota), so that
what the quota adds can be told apart from what a loaded host adds. Beside the latencies:
how often the kernel throttled the environments (cgroup `cpu.stat`) and the runtime's CPU
time per invocation (the handler returns its process's CPU time).

Share: a CPU-bound function loops for `--busy-seconds` of wall time and returns its CPU
time over wall time, at 128 MB (Lambda: 128/1769 = 7.2% of a core) and 1,769 MB (a full
core); a plain host process loops at the same time as the 1,769 MB one, as the reference
of what "a full core" means on a loaded host.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import procmem
from bench.common import BenchServer, Invoker, write_result, zip_of
from bench.loadgen import summary

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = f"python{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}"
SMALL_MB = 128
FULL_CORE_MB = 1769
WARMUP = 200

# A no-op that also tells how much CPU its process has used so far.
NOOP_CPU = "import time\n\ndef handler(event, context):\n    return time.process_time()\n"
BUSY = '''import time

def handler(event, context):
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - wall0 < event["seconds"]:
        pass
    return (time.process_time() - cpu0) / (time.monotonic() - wall0)
'''
REFERENCE = (
    "import sys, time\n"
    "wall0, cpu0 = time.monotonic(), time.process_time()\n"
    "while time.monotonic() - wall0 < float(sys.argv[1]):\n"
    "    pass\n"
    "print((time.process_time() - cpu0) / (time.monotonic() - wall0))\n"
)


def _create(server: BenchServer, name: str, source: str, memory_mb: int) -> None:
    server.client().create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler="app.handler",
                                    Code={"ZipFile": zip_of({"app.py": source})}, MemorySize=memory_mb,
                                    Timeout=60)


def throttling(server_pid: int) -> tuple[int, float]:
    """Periods in which the server's environments were throttled, and the time they waited (ms), so far."""
    periods, waited_ms = 0, 0.0
    for cgroup in procmem.environment_cgroups(server_pid):
        cpu = Path(str(cgroup).replace("/memory/", "/cpu/", 1)) if "/memory/" in str(cgroup) else cgroup
        try:
            fields = dict(line.split() for line in (cpu / "cpu.stat").read_text().splitlines())
        except OSError:
            continue
        periods += int(fields.get("nr_throttled", 0))
        if "throttled_time" in fields:  # v1, ns
            waited_ms += int(fields["throttled_time"]) / 1e6
        else:  # v2, µs
            waited_ms += int(fields.get("throttled_usec", 0)) / 1e3
    return periods, waited_ms


def _calls(port: int, function: str, calls: int) -> tuple[list[float], float]:
    """Latencies (ms) of `calls` sequential invocations after a warm-up, and the runtime's CPU µs per call."""
    invoke = Invoker(port, function)
    for _ in range(WARMUP):
        invoke()
    times: list[float] = []
    cpu_start = float(invoke())
    for _ in range(calls):
        t0 = time.perf_counter()
        last = invoke()
        times.append((time.perf_counter() - t0) * 1000)
    invoke.conn.close()
    return times, (float(last) - cpu_start) / calls * 1e6


def _client(port: int, function: str, calls: int, out: Any) -> None:
    out.put(_calls(port, function, calls))


def latencies(server: BenchServer, memory_mb: int, connections: int, calls: int) -> dict[str, Any]:
    """`connections` clients, each on its own connection and its own function of `memory_mb`."""
    names = [f"noop-{memory_mb}-{connections}-{i}" for i in range(connections)]
    for name in names:
        _create(server, name, NOOP_CPU, memory_mb)
        Invoker(server.port, name)()  # cold start out of the way
    before = throttling(server.pid())
    load0 = os.getloadavg()[0]
    if connections == 1:
        results = [_calls(server.port, names[0], calls)]
    else:
        queue: Any = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_client, args=(server.port, name, calls, queue)) for name in names]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
    after = throttling(server.pid())
    times = [t for r in results for t in r[0]]
    return {
        **summary(times), "memory_mb": memory_mb, "connections": connections,
        "over_2ms": sum(t > 2 for t in times), "over_10ms": sum(t > 10 for t in times),
        "runtime_cpu_us_per_call": sum(r[1] for r in results) / len(results),
        "throttled_periods": after[0] - before[0], "throttled_ms": after[1] - before[1],
        "load_1min": max(load0, os.getloadavg()[0]),
    }


def share(server: BenchServer, seconds: float) -> dict[str, Any]:
    """The share of a core a CPU-bound function gets at 128 MB and at 1,769 MB, and a host process beside it."""
    lam = server.client()
    figures: dict[str, Any] = {"seconds": seconds}
    for memory_mb in (SMALL_MB, FULL_CORE_MB):
        name = f"busy-{memory_mb}"
        _create(server, name, BUSY, memory_mb)
        lam.invoke(FunctionName=name, Payload=json.dumps({"seconds": 0.01}))
        reference = None
        if memory_mb == FULL_CORE_MB:
            reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(seconds)], stdout=subprocess.PIPE,
                                         text=True)
        answer = lam.invoke(FunctionName=name, Payload=json.dumps({"seconds": seconds}))
        figures[f"share_{memory_mb}mb"] = float(answer["Payload"].read())
        if reference is not None:
            figures["host_process_share"] = float(reference.communicate(timeout=seconds + 30)[0])
    figures["expected_128mb"] = SMALL_MB / FULL_CORE_MB
    figures["load_1min"] = os.getloadavg()[0]
    return figures


def run(calls: int, connections: int, busy_seconds: float, port: int | None) -> dict[str, Any]:
    server = BenchServer(port=port)
    try:
        _create(server, "warmup", NOOP_CPU, SMALL_MB)
        Invoker(server.port, "warmup")()  # the runtime's zygote starts with its first function
        result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                                  "isolation": server.health.get("isolation"), "calls": calls}
        for memory_mb in (SMALL_MB, FULL_CORE_MB):
            result[f"sequential_{memory_mb}mb"] = latencies(server, memory_mb, 1, calls)
            result[f"parallel_{memory_mb}mb"] = latencies(server, memory_mb, connections, calls)
        result["share"] = share(server, busy_seconds)
        return result
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="invocations per connection")
    parser.add_argument("--connections", type=int, default=8, help="connections (each on its own function)")
    parser.add_argument("--busy-seconds", type=float, default=2.0, help="wall time of the CPU-bound invocations")
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    args = parser.parse_args()
    result = run(args.calls, args.connections, args.busy_seconds, args.port)
    path = write_result("cpu_stalls", result)
    print(f"isolation: {result['isolation']}   cpus: {result['machine']['cpus']}   calls per connection: "
          f"{args.calls}")
    print(f"{'workload':<30}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'>2ms':>6}{'>10ms':>6}"
          f"{'throttled':>10}{'wait ms':>9}{'cpu µs':>8}{'load':>6}")
    for kind in ("sequential", "parallel"):
        for memory_mb in (SMALL_MB, FULL_CORE_MB):
            r = result[f"{kind}_{memory_mb}mb"]
            label = f"{kind} x{r['connections']}, {memory_mb} MB"
            print(f"{label:<30}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['max']:>8.2f}{r['over_2ms']:>6}"
                  f"{r['over_10ms']:>6}{r['throttled_periods']:>10}{r['throttled_ms']:>9.1f}"
                  f"{r['runtime_cpu_us_per_call']:>8.0f}{r['load_1min']:>6.2f}")
    s = result["share"]
    print(f"CPU share over {s['seconds']:.0f} s: 128 MB {s['share_128mb']:.3f} of a core (Lambda: "
          f"{s['expected_128mb']:.3f}), 1769 MB {s['share_1769mb']:.3f} (host process beside it: "
          f"{s['host_process_share']:.3f}), load {s['load_1min']:.2f}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
