"""Invocation benchmark: cold start, warm round trip and throughput through the HTTP API.

    python -m bench.invoke [--cold 60] [--warm 3000] [--clients 8] [--seconds 5]

Cold start: the first invocation of each of N freshly created functions (a new isolated
environment: fork from the zygote, namespaces, cgroup, init, handler import), measured
end to end as the client sees it. Warm: sequential invocations of one function on a
keep-alive connection from another process. Throughput: N client processes, each with
its own keep-alive connection, invoking as fast as they can.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import time
from typing import Any

from bench import loadgen
from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"


def _throughput_worker(port: int, function: str, seconds: float, start_at: float, out: Any) -> None:
    invoke = Invoker(port, function)
    invoke()
    while time.time() < start_at:
        time.sleep(0.001)
    done = 0
    latencies: list[float] = []
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        invoke()
        latencies.append(time.perf_counter() - t0)
        done += 1
    out.put((done, latencies))


def run(cold: int, warm: int, clients: int, seconds: float, runtime: str) -> dict[str, Any]:
    server = BenchServer()
    try:
        lam = server.client()
        code = zip_of({"app.py": NOOP})
        # Warm up the runtime's zygote once: the figures below are for new environments.
        lam.create_function(FunctionName="warmup", Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code})
        Invoker(server.port, "warmup")()

        names = [f"cold-{i}" for i in range(cold)]
        for name in names:
            lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": code})
        cold_ms = [loadgen.first_invocation_ms(server.port, name) for name in names]

        lam.create_function(FunctionName="warm", Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code}, MemorySize=1769)
        invoke = Invoker(server.port, "warm")
        for _ in range(200):
            invoke()
        warm_ms: list[float] = []
        for _ in range(warm):
            t0 = time.perf_counter()
            invoke()
            warm_ms.append((time.perf_counter() - t0) * 1000)

        queue: Any = multiprocessing.Queue()
        start_at = time.time() + 1.5
        procs = [
            multiprocessing.Process(target=_throughput_worker, args=(server.port, "warm", seconds, start_at, queue))
            for _ in range(clients)
        ]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        total = sum(r[0] for r in results)
        under_load = [x * 1000 for r in results for x in r[1]]

        return {
            "machine": {"cpus": multiprocessing.cpu_count(), "python": platform.python_version()},
            "isolation": server.health.get("isolation"),
            "runtime": runtime,
            "cold_start_ms": {"n": cold, "p50": percentile(cold_ms, 50), "p99": percentile(cold_ms, 99)},
            "warm_round_trip_ms": {"n": warm, "p50": percentile(warm_ms, 50), "p99": percentile(warm_ms, 99)},
            "throughput": {
                "clients": clients, "seconds": seconds, "invokes_per_s": total / seconds,
                "latency_p50_ms": percentile(under_load, 50), "latency_p99_ms": percentile(under_load, 99),
            },
        }
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=60, help="functions to cold-start")
    parser.add_argument("--warm", type=int, default=3000, help="sequential warm invocations")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for throughput")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the throughput run")
    parser.add_argument("--runtime", default=f"python{platform.python_version_tuple()[0]}."
                                             f"{platform.python_version_tuple()[1]}")
    args = parser.parse_args()
    result = run(args.cold, args.warm, args.clients, args.seconds, args.runtime)
    path = write_result("invoke", result)
    c, w, t = result["cold_start_ms"], result["warm_round_trip_ms"], result["throughput"]
    print(f"isolation: {result['isolation']}   runtime: {result['runtime']}   cpus: {result['machine']['cpus']}")
    print(f"{'workload':<34}{'p50':>10}{'p99':>10}")
    print(f"{'cold start (new environment), ms':<34}{c['p50']:>10.2f}{c['p99']:>10.2f}")
    print(f"{'warm round trip, ms':<34}{w['p50']:>10.3f}{w['p99']:>10.3f}")
    print(f"{'latency under load, ms':<34}{t['latency_p50_ms']:>10.3f}{t['latency_p99_ms']:>10.3f}")
    print(f"throughput with {t['clients']} clients: {t['invokes_per_s']:.0f} invokes/s")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
