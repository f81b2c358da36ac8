"""Cost of CloudWatch/Prometheus metrics per warm invocation.

    python -m bench.metrics [--warm 3000] [--src PATH]

In process: the CPU time of the one call the invoke path makes (`MetricsRecorder.invocation`),
and of draining and writing what it recorded (`MetricStore.flush`, off the invoke path), per
invocation. Through HTTP: warm invocations of a no-op function on a keep-alive connection,
with the server's own CPU time per invocation (from /proc, so a busy machine changes it
less than the wall clock) beside the round trip's p50. `--src` runs the server from another
source tree (another commit's `src`), for a before/after comparison on the same machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"


def in_process(calls: int) -> dict[str, float]:
    from lambdastack.observe.cloudwatch_metrics.recorder import MetricsRecorder
    from lambdastack.observe.cloudwatch_metrics.store import MetricStore

    recorder = MetricsRecorder()
    record = recorder.invocation
    t0 = time.process_time()
    for _ in range(calls):
        record("000000000000", "us-east-1", "fn", None, "$LATEST", 1.5, False, 1, False)
    record_ns = (time.process_time() - t0) / calls * 1e9
    with tempfile.TemporaryDirectory(prefix="lambdastack-bench-") as folder:
        store = MetricStore(Path(folder) / "metrics.db", recorder)
        t0 = time.process_time()
        store.flush()
        flush_us = (time.process_time() - t0) / calls * 1e6
        store.close()
    return {"record_ns_per_invocation": round(record_ns, 1), "flush_us_per_invocation": round(flush_us, 3)}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def through_http(warm: int) -> dict[str, float]:
    server = BenchServer()
    try:
        server.client().create_function(FunctionName="warm", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                        Code={"ZipFile": zip_of({"app.py": NOOP})}, MemorySize=1769)
        invoke = Invoker(server.port, "warm")
        for _ in range(300):
            invoke()
        time.sleep(2.5)  # one metrics flush behind us
        cpu0 = _cpu_s(server.pid())
        latencies: list[float] = []
        for _ in range(warm):
            t0 = time.perf_counter()
            invoke()
            latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(2.5)  # and the flush of these invocations counted
        cpu_us = (_cpu_s(server.pid()) - cpu0) / warm * 1e6
        return {"warm_p50_ms": round(percentile(latencies, 50), 3), "warm_p99_ms": round(percentile(latencies, 99), 3),
                "server_cpu_us_per_invocation": round(cpu_us, 1)}
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=3000, help="sequential warm invocations")
    parser.add_argument("--calls", type=int, default=200_000, help="recorder calls in process")
    parser.add_argument("--src", help="run the server from this source tree (e.g. a checkout of main's src)")
    args = parser.parse_args()
    result: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    if args.src:
        os.environ["PYTHONPATH"] = args.src
        result["server_src"] = args.src
    else:
        result.update(in_process(args.calls))
    result.update(through_http(args.warm))
    result["load_after"] = os.getloadavg()[0]
    path = write_result("metrics", result)
    for key, value in result.items():
        print(f"{key:<34}{value}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
