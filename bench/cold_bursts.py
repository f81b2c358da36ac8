"""Cold starts in bursts: N new functions invoked back to back, with the pre-built pool and without.

    python -m bench.cold_bursts [--functions 30] [--rounds 3] [--port PORT]

Each round deploys N new functions, lets the server settle (the pre-built pool refills), then
invokes each one once, on a new connection, one right after the other: the first invocation of
a function that has just been deployed, as a client deploying a set of functions meets it. The
first round follows a quiet period; later rounds follow the earlier bursts, so they show what
a pool that learns from the recent cold-start rate gives. A spaced run (the same functions,
0.1 s apart) is the reference. Modes: the default pool, and `serve --prebuilt 0` (every
environment built on demand). The load average is recorded beside each figure: this is
wall-clock time on a machine that may be shared.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import time
from typing import Any

from bench import loadgen
from bench.common import NOOP, BenchServer, Invoker, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"
MODES = {"pool": (), "prebuilt-0": ("--prebuilt", "0")}


def _health(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_lambdastack/health")
    health: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return health


def _pool(port: int) -> dict[str, int]:
    """The pre-built pools' figures, summed over the runtimes (none with `--prebuilt 0`)."""
    total = {"ready": 0, "target": 0, "served": 0, "built_on_demand": 0}
    for figures in (_health(port).get("prebuilt") or {}).values():
        for key in total:
            total[key] += figures.get(key, 0)
    return total


def _deploy(lam: Any, names: list[str], runtime: str, code: bytes) -> None:
    for name in names:
        lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": code})


def run_mode(mode: str, functions: int, rounds: int, settle_s: float, runtime: str,
             port: int | None) -> dict[str, Any]:
    server = BenchServer(*MODES[mode], port=port)
    try:
        lam = server.client()
        code = zip_of({"app.py": NOOP})
        _deploy(lam, ["warmup"], runtime, code)
        Invoker(server.port, "warmup")()  # the runtime's zygote starts once; the figures are for new environments
        time.sleep(settle_s)
        bursts: list[dict[str, Any]] = []
        for r in range(rounds):
            names = [f"burst{r}-{i}" for i in range(functions)]
            _deploy(lam, names, runtime, code)
            time.sleep(settle_s)
            load = os.getloadavg()[0]
            before = _pool(server.port)
            times = [loadgen.first_invocation_ms(server.port, name) for name in names]
            after = _pool(server.port)
            bursts.append({"round": r + 1, "load1": load, "pool_ready_before": before["ready"],
                           "pool_target_before": before["target"],
                           "served_from_pool": after["served"] - before["served"],
                           **loadgen.summary(times), "ms": [round(t, 2) for t in times]})
        names = [f"spaced-{i}" for i in range(functions)]
        _deploy(lam, names, runtime, code)
        time.sleep(settle_s)
        load = os.getloadavg()[0]
        spaced: list[float] = []
        for name in names:
            spaced.append(loadgen.first_invocation_ms(server.port, name))
            time.sleep(0.1)
        return {"mode": mode, "isolation": server.health.get("isolation"), "bursts": bursts,
                "spaced": {"load1": load, **loadgen.summary(spaced)}}
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=30, help="new functions per burst")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per mode")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between deploying and invoking")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    parser.add_argument("--runtime", default=f"python{platform.python_version_tuple()[0]}."
                                             f"{platform.python_version_tuple()[1]}")
    args = parser.parse_args()
    results = [run_mode(mode, args.functions, args.rounds, args.settle, args.runtime, args.port)
               for mode in args.modes.split(",")]
    path = write_result("cold_bursts", {"functions": args.functions, "runtime": args.runtime, "modes": results})
    print(f"{args.functions} new functions per burst, runtime {args.runtime}")
    print(f"{'mode':<12}{'run':<10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'load':>7}  pool before (ready/target)"
          "  served from pool")
    for result in results:
        for burst in result["bursts"]:
            print(f"{result['mode']:<12}{'burst ' + str(burst['round']):<10}{burst['p50']:>9.2f}{burst['p99']:>9.2f}"
                  f"{burst['max']:>9.2f}{burst['load1']:>7.2f}"
                  f"  {burst['pool_ready_before']:>6}/{burst['pool_target_before']:<21}"
                  f"{burst['served_from_pool']:>5}/{len(burst['ms'])}")
        s = result["spaced"]
        print(f"{result['mode']:<12}{'spaced':<10}{s['p50']:>9.2f}{s['p99']:>9.2f}{s['max']:>9.2f}{s['load1']:>7.2f}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
