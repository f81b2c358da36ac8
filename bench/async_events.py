"""Asynchronous invocation benchmark: durable accepted events/s and processed events/s.

    python -m bench.async_events [--clients 8] [--seconds 5] [--memory 1769]

Accepted: N client processes, each on its own keep-alive connection, post `Event`
invocations of a no-op function as fast as they can; an event counts once its 202 arrived,
and the server sends a 202 only after the event is fsync'd (SQLite WAL, synchronous=FULL).
The function's reserved concurrency is 0 meanwhile, so nothing runs and the figure is the
intake alone.

Processed: the reservation is lifted and the backlog drains; processed/s is the backlog
divided by the time until the queue is empty (each event: claimed, run in an isolated
environment, removed with a durable commit).

Mixed: clients post while the queue drains, the steady state of a busy server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import platform
import time
from typing import Any

from bench.common import NOOP, BenchServer, percentile, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"
FUNCTION = "async-noop"


def _client(port: int, seconds: float, start_at: float, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/2015-03-31/functions/{FUNCTION}/invocations"
    headers = {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"}
    while time.time() < start_at:
        time.sleep(0.001)
    accepted = 0
    latencies: list[float] = []
    end = start_at + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        conn.request("POST", path, body=b'{"n": 1}', headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 202:
            raise RuntimeError(f"Event invoke answered {response.status}")
        latencies.append(time.perf_counter() - t0)
        accepted += 1
    out.put((accepted, latencies))


def _post(port: int, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    queue: Any = multiprocessing.Queue()
    start_at = time.time() + 1.0
    procs = [multiprocessing.Process(target=_client, args=(port, seconds, start_at, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    accepted = sum(r[0] for r in results)
    latencies = [x for r in results for x in r[1]]
    return accepted, seconds, latencies


def _view(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", f"/_lambdastack/async/{FUNCTION}")
    document = json.loads(conn.getresponse().read())
    conn.close()
    return {} if not document["functions"] else dict(document["functions"][0])


def _succeeded(port: int) -> int:
    return int(_view(port).get("counters", {}).get("succeeded", 0))


def run(clients: int, seconds: float, memory: int, runtime: str) -> dict[str, Any]:
    server = BenchServer()
    try:
        lam = server.client()
        lam.create_function(FunctionName=FUNCTION, Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": NOOP})}, MemorySize=memory)
        lam.get_waiter("function_active_v2").wait(FunctionName=FUNCTION)
        lam.invoke(FunctionName=FUNCTION, Payload=b"{}")  # the runtime's zygote is warm

        # 1. Intake alone: nothing runs while the clients post.
        lam.put_function_concurrency(FunctionName=FUNCTION, ReservedConcurrentExecutions=0)
        accepted, elapsed, latencies = _post(server.port, clients, seconds)
        backlog = int(_view(server.port)["queueDepth"])

        # 2. Drain the backlog.
        before = _succeeded(server.port)
        t0 = time.perf_counter()
        lam.delete_function_concurrency(FunctionName=FUNCTION)
        while _view(server.port).get("queueDepth", 0) > 0:
            time.sleep(0.05)
        drain_s = time.perf_counter() - t0
        drained = _succeeded(server.port) - before

        # 3. Both at once.
        before = _succeeded(server.port)
        t0 = time.perf_counter()
        mixed_accepted, mixed_s, mixed_latencies = _post(server.port, clients, seconds)
        mixed_processed = _succeeded(server.port) - before
        mixed_wall = time.perf_counter() - t0
        while _view(server.port).get("queueDepth", 0) > 0:
            time.sleep(0.05)

        return {
            "isolation": server.health.get("isolation"),
            "runtime": runtime,
            "memory_mb": memory,
            "clients": clients,
            "cpus": multiprocessing.cpu_count(),
            "machine": platform.machine(),
            "accepted": {
                "events": accepted, "seconds": elapsed, "per_s": round(accepted / elapsed, 1),
                "p50_ms": round(percentile(latencies, 50) * 1000, 2),
                "p99_ms": round(percentile(latencies, 99) * 1000, 2),
                "queued_after": backlog,
            },
            "processed": {"events": drained, "seconds": round(drain_s, 3), "per_s": round(drained / drain_s, 1)},
            "mixed": {
                "accepted_per_s": round(mixed_accepted / mixed_s, 1),
                "accept_p99_ms": round(percentile(mixed_latencies, 99) * 1000, 2),
                # Events finished while the clients posted (the wall time includes their start-up).
                "processed_per_s": round(mixed_processed / mixed_wall, 1),
            },
        }
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--memory", type=int, default=1769, help="MemorySize of the no-op function")
    parser.add_argument("--runtime", default=f"python{platform.python_version_tuple()[0]}."
                                             f"{platform.python_version_tuple()[1]}")
    args = parser.parse_args()
    result = run(args.clients, args.seconds, args.memory, args.runtime)
    path = write_result("async_events", result)
    a, p, m = result["accepted"], result["processed"], result["mixed"]
    print(f"accepted (durable, {result['clients']} clients): {a['per_s']:,.0f} events/s "
          f"(p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms; {a['events']} events in {a['seconds']} s)")
    print(f"processed (no-op, {result['memory_mb']} MB): {p['per_s']:,.0f} events/s "
          f"({p['events']} events in {p['seconds']} s)")
    print(f"mixed: {m['accepted_per_s']:,.0f} accepted/s and {m['processed_per_s']:,.0f} processed/s at once")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
