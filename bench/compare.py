"""lambdastack against the tools a user would pick instead, side by side in one run.

    python -m bench.compare [--only cold,warm] [--no-peers] [--cold 40] [--warm 2000] ...

Workloads (each system gets a fresh server or process for each of them, one system at a time):

  cold        the first invocation of each of N new functions: lambdastack with its pre-built
              environment pool on (the default) and with --prebuilt 0; serverless-offline's first
              invocation of each of N functions (a new instance, i.e. a new Python process); for the
              process-per-invocation peers every invocation is one
  snapstart   a function whose init takes over a second (numpy's import and a sleep): lambdastack's
              published SnapStart versions, each invoked once (skipped if the server does not offer
              SnapStart); on the peers a new instance pays the whole init
  warm        sequential invocations of a no-op on one keep-alive connection, from another process
  throughput  8 keep-alive connections for a few seconds (wrk; Python client processes if wrk is missing)
  idle        N 128 MB functions invoked once each; the PSS of the idle warm environments they leave
              (every process in their cgroups), per environment and how many fit in 24 GB
  server      the server's own memory just after start, with no environment

Peers: serverless-offline 13 with Serverless Framework 3 (npm), python-lambda-local (PyPI), and a
fresh `python3` process per invocation (the real interpreter binary). They are installed into
bench/.peers/ on first use. Ratios are lambdastack / peer. Results go to bench/results/compare-*.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import compare_table, host_tuning
from bench.common import RESULTS
from bench.lambdastack_target import LambdaStack
from bench.workload import WORKLOADS, Sizes, Skipped, Target

PEERS = ("serverless-offline", "python-lambda-local", "python3-process")


def peer_factories() -> dict[str, Callable[[], Target]]:
    from bench.peers.processes import FreshPython, LambdaLocal
    from bench.peers.serverless_offline import ServerlessOffline

    return {"serverless-offline": ServerlessOffline, "python-lambda-local": LambdaLocal, "python3-process": FreshPython}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(system: Target, workload: str, sizes: Sizes) -> dict[str, Any]:
    load = os.getloadavg()[0]
    started = time.monotonic()
    try:
        figures = getattr(system, workload)(sizes)
    except Skipped as e:
        figures = {"skipped": str(e)}
    except Exception as e:  # one system failing does not lose the others' figures
        figures = {"error": f"{type(e).__name__}: {e}"}
    figures["load_before"] = load
    figures["wall_s"] = time.monotonic() - started
    return figures


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure per key from several rounds: the median of each number; every round is kept under "rounds"."""
    good = [r for r in runs if "skipped" not in r and "error" not in r]
    if len(runs) == 1 or not good:
        return runs[0]
    return {**_median_of(good), "rounds": runs}


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(first, dict):
            out[key] = _median_of([v for v in values if isinstance(v, dict)])
        elif isinstance(first, int | float) and not isinstance(first, bool):
            out[key] = statistics.median(v for v in values if isinstance(v, int | float))
        else:
            out[key] = first
    return out


def run(workloads: list[str], peers: list[str], sizes: Sizes, rounds: int = 1) -> dict[str, Any]:
    systems: list[Target] = [LambdaStack()]
    unavailable: dict[str, str] = {}
    factories = peer_factories()
    for name in peers:
        progress(f"preparing {name}")
        try:
            systems.append(factories[name]())
        except Skipped as e:
            unavailable[name] = str(e)
    names = [s.name for s in systems] + list(unavailable)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for workload in workloads:
        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
        # Rounds alternate between the systems, so that a busy moment of a shared machine is spread over all.
        for round_number in range(rounds):
            for system in systems:
                if runs[system.name] and "skipped" in runs[system.name][0]:
                    continue
                progress(f"{workload}: {system.name}" + (f" (round {round_number + 1})" if rounds > 1 else ""))
                runs[system.name].append(measure(system, workload, sizes))
        results[workload] = {name: combine(measured) for name, measured in runs.items()}
        for name, why in unavailable.items():
            results[workload][name] = {"skipped": f"not available: {why}"}
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "systems": {s.name: s.version() for s in systems} | {n: "not available" for n in unavailable},
        "order": names,
        "sizes": sizes.as_dict(),
        "rounds": rounds,
        "results": results,
    }


def notes(document: dict[str, Any]) -> list[str]:
    out = []
    for workload, by_system in document["results"].items():
        for system, figures in by_system.items():
            for kind in ("skipped", "error"):
                if kind in figures:
                    out.append(f"{workload} / {system}: {kind}: {figures[kind]}")
        if workload == "throughput":
            generators = {f.get("generator") for f in by_system.values() if f.get("generator")}
            out.append(f"throughput load: {'; '.join(sorted(str(g) for g in generators))}")
        if workload == "idle" and "functions" in by_system.get("lambdastack", {}):
            ls = by_system["lambdastack"]
            charged = ls["cgroup_charged_mb_per_environment"]
            out.append(f"idle: lambdastack {ls['environments']} environments for {ls['functions']} functions "
                       f"({ls['stopped_by']}), server {ls['server_pss_mb']:.1f} MB PSS, zygotes "
                       f"{ls['zygotes_pss_mb']:.1f} MB PSS, cgroup-charged {charged:.1f} MB per environment; "
                       f"the server took {ls.get('server_stop_s', float('nan')):.1f} s to stop")
        if workload == "snapstart" and "initialization_types" in by_system.get("lambdastack", {}):
            out.append(f"snapstart: lambdastack environments reported AWS_LAMBDA_INITIALIZATION_TYPE "
                       f"{', '.join(by_system['lambdastack']['initialization_types'])}")
    return out


def write(document: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(document, indent=2, default=str) + "\n"
    path = directory / f"compare-{stamp}.json"
    path.write_text(text)
    (directory / "compare-latest.json").write_text(text)
    return path


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"workloads to run, from {','.join(WORKLOADS)}")
    parser.add_argument("--no-peers", action="store_true", help="measure lambdastack alone")
    parser.add_argument("--peers", default=",".join(PEERS), help=f"peers to run, from {','.join(PEERS)}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--cpu-latency-us", type=host_tuning.parse, default=None, metavar="US|off",
                        help="hold a PM QoS request for the whole run, for every system (default: off, for none)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every workload this many times, alternating systems; the table shows medians "
                             "and lambdastack's range")
    defaults = Sizes()
    for field in dataclasses.fields(Sizes):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(getattr(defaults, field.name)), default=getattr(defaults, field.name),
                            help=f"(default {getattr(defaults, field.name)})")
    args = parser.parse_args(argv)
    for name in args.only.split(","):
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    for name in args.peers.split(","):
        if name and name not in PEERS:
            parser.error(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so every server and peer started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse(argv)
    sizes = Sizes(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Sizes)})
    workloads = [w for w in WORKLOADS if w in args.only.split(",")]
    peers = [] if args.no_peers else [p for p in PEERS if p in args.peers.split(",")]
    with host_tuning.cpu_latency_held(args.cpu_latency_us) as tuning:
        document = run(workloads, peers, sizes, max(1, args.rounds))
    document["host_tuning"] = tuning
    table = compare_table.rows(document["results"], document["order"])
    document["table"] = table
    path = write(document, args.results_dir)
    print(f"cpus: {document['machine']['cpus']}   python: {document['machine']['python']}   "
          f"ratio: lambdastack / peer")
    print(f"host tuning: {tuning}")
    for name, version in document["systems"].items():
        print(f"  {name}: {version}")
    print()
    print(compare_table.markdown(table, document["order"]))
    print()
    for line in notes(document):
        print(f"- {line}")
    print(f"written to {path}")
    failed = [w for w, by in document["results"].items() if "error" in by.get("lambdastack", {})]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
