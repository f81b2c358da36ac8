"""Layers, aliases and deployments benchmark.

    python -m bench.layers [--cold 30] [--warm 2000] [--deployments 5]

Cold start with 0, 1 and 5 layers (the first invocation of each of N new functions; the
server builds every environment on demand, so the figures differ only by the /opt mount: a
bind for one layer, an overlayfs for several). Warm round trip through a version and
through an alias splitting 50/50 between two versions (alias resolution and the
per-version metrics on the hot path). Deployment reaction: how long a canary of a version
that fails 30% of its calls lives before it is rolled back, under a steady stream of
sequential invocations. Also the in-process cost of recording one invocation's metrics.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import platform
import threading
import time
import timeit
from typing import Any

from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of
from lambdastack.observe.metrics import Metrics

ROLE = "arn:aws:iam::000000000000:role/bench"
FLAKY = (
    "calls = 0\n"
    "def handler(event, context):\n"
    "    global calls\n"
    "    calls += 1\n"
    "    if calls % 10 in (1, 4, 7):\n"
    "        raise RuntimeError('flaky')\n"
    "    return event\n"
)


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}


def cold_starts(server: BenchServer, runtime: str, count: int, layers: list[str]) -> list[float]:
    lam = server.client()
    code = zip_of({"app.py": NOOP})
    times: list[float] = []
    for i in range(count):
        name = f"cold-{len(layers)}-{i}"
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code}, Layers=layers)
        invoke = Invoker(server.port, name)
        t0 = time.perf_counter()
        invoke()
        times.append((time.perf_counter() - t0) * 1000)
        invoke.conn.close()
    return times


def warm(server: BenchServer, target: str, count: int) -> list[float]:
    invoke = Invoker(server.port, target)
    for _ in range(200):
        invoke()
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        invoke()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _request(port: int, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(method, path, body=json.dumps(body) if body else None, headers={"Content-Type": "application/json"})
    document = json.loads(conn.getresponse().read())
    conn.close()
    return dict(document)


def deployment_reaction(server: BenchServer, runtime: str, index: int) -> dict[str, float]:
    """Seconds from the start of a 10% canary of a 30%-failing version to its rollback."""
    lam = server.client()
    name = f"deploy-{index}"
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": NOOP})}, Publish=True)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    bad = lam.update_function_code(FunctionName=name, ZipFile=zip_of({"app.py": FLAKY}), Publish=True)["Version"]
    stop = threading.Event()

    def traffic() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        while not stop.is_set():
            conn.request("POST", f"/2015-03-31/functions/{name}:live/invocations", body=b"{}")
            conn.getresponse().read()

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        t0 = time.perf_counter()
        started = _request(server.port, "POST", "/_lambdastack/deployments", {
            "FunctionName": name, "AliasName": "live", "TargetVersion": bad,
            "Strategy": {"Type": "Canary", "Percent": 10, "IntervalSeconds": 300},
        })
        while True:
            document = _request(server.port, "GET", f"/_lambdastack/deployments/{started['DeploymentId']}")
            if document["Status"] != "InProgress":
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        thread.join(10)
    if document["Status"] != "RolledBack":
        raise RuntimeError(f"the canary was not rolled back: {document['Status']} {document['StatusReason']}")
    return {"seconds": seconds, "new_version_invocations": document["Progress"]["Health"]["New"]["Invocations"]}


def run(cold: int, warm_count: int, deployments: int, runtime: str) -> dict[str, Any]:
    metrics = Metrics()
    key = ("000000000000", "us-east-1", "fn", "1")
    record_ns = min(timeit.repeat(lambda: metrics.record(key, 1.5, False), number=100_000, repeat=5)) / 100_000 * 1e9

    server = BenchServer("--prebuilt", "0")
    try:
        lam = server.client()
        lam.create_function(FunctionName="warmup", Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": NOOP})})
        Invoker(server.port, "warmup")()
        layers = [
            lam.publish_layer_version(LayerName=f"layer-{i}",
                                      Content={"ZipFile": zip_of({f"python/mod{i}.py": "X = 1\n",
                                                                  "shared.txt": str(i)})})["LayerVersionArn"]
            for i in range(5)
        ]
        cold_ms = {str(n): _stats(cold_starts(server, runtime, cold, layers[:n])) for n in (0, 1, 5)}

        lam.create_function(FunctionName="split", Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": NOOP})}, Publish=True, MemorySize=1769)
        lam.update_function_code(FunctionName="split", ZipFile=zip_of({"app.py": NOOP + "# v2\n"}), Publish=True)
        lam.create_alias(FunctionName="split", Name="half", FunctionVersion="1",
                         RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        warm_ms = {"version": _stats(warm(server, "split:1", warm_count)),
                   "alias_50_50": _stats(warm(server, "split:half", warm_count))}
        reactions = [deployment_reaction(server, runtime, i) for i in range(deployments)]
    finally:
        server.close()
    seconds = [r["seconds"] for r in reactions]
    served = [r["new_version_invocations"] for r in reactions]
    return {
        "machine": {"cpus": multiprocessing.cpu_count(), "python": platform.python_version()},
        "isolation": server.health.get("isolation"),
        "runtime": runtime,
        "cold_start_ms_by_layers": cold_ms,
        "warm_round_trip_ms": warm_ms,
        "canary_rollback": {"n": len(reactions), "seconds_p50": percentile(seconds, 50),
                            "seconds_max": max(seconds), "new_version_invocations_p50": percentile(served, 50)},
        "metrics_record_ns": record_ns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=30, help="functions to cold-start per layer count")
    parser.add_argument("--warm", type=int, default=2000, help="sequential warm invocations per target")
    parser.add_argument("--deployments", type=int, default=5, help="canaries to roll back")
    parser.add_argument("--runtime", default=f"python{platform.python_version_tuple()[0]}."
                                             f"{platform.python_version_tuple()[1]}")
    args = parser.parse_args()
    result = run(args.cold, args.warm, args.deployments, args.runtime)
    path = write_result("layers", result)
    print(f"isolation: {result['isolation']}   runtime: {result['runtime']}   cpus: {result['machine']['cpus']}")
    print(f"{'workload':<44}{'p50':>10}{'p99':>10}")
    for n, s in result["cold_start_ms_by_layers"].items():
        print(f"{f'cold start with {n} layer(s), ms':<44}{s['p50']:>10.2f}{s['p99']:>10.2f}")
    for target, s in result["warm_round_trip_ms"].items():
        print(f"{f'warm round trip via {target}, ms':<44}{s['p50']:>10.3f}{s['p99']:>10.3f}")
    c = result["canary_rollback"]
    print(f"30%-failing canary rolled back after {c['seconds_p50']:.2f} s (p50, max {c['seconds_max']:.2f} s), "
          f"{c['new_version_invocations_p50']:.0f} invocations of the new version")
    print(f"recording one invocation's metrics: {result['metrics_record_ns']:.0f} ns")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
