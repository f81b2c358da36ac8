"""Cost of tracing per warm invocation: the server's CPU time and the round trip, with tracing
off, on but not sampled (PassThrough, no caller header), and on with every invocation sampled
and exported over OTLP/HTTP to a receiver on loopback.

    python -m bench.tracing [--invokes 3000] [--rounds 3] [--baseline SRC]

`--baseline SRC`: also measure the server whose source is in SRC (e.g. an earlier commit's
`src`, from `git archive`), as the reference for "off".

The server's CPU time is the sum of its threads' time on CPU (/proc/PID/task/*/schedstat, in
ns), the exporting thread included; what the function's own environment spends is not in it.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = "python{}.{}".format(*platform.python_version_tuple()[:2])


class Receiver:
    """An OTLP/HTTP endpoint that accepts every export (the figures are the server's, not its)."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bytes += len(self.rfile.read(int(self.headers.get("content-length") or 0)))
                receiver.exports += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def cpu_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def measure(invokes: int, mode: str, env: dict[str, str], receiver: Receiver | None) -> dict[str, Any]:
    with environment(env):
        server = BenchServer()
    try:
        lam = server.client()
        lam.create_function(FunctionName="warm", Runtime=RUNTIME,
                            Role=ROLE, Handler="app.handler", Code={"ZipFile": zip_of({"app.py": NOOP})},
                            TracingConfig={"Mode": mode})
        invoke = Invoker(server.port, "warm")
        for _ in range(300):
            invoke()
        time.sleep(0.5)
        before = cpu_ns(server.pid())
        round_trips: list[float] = []
        for _ in range(invokes):
            t0 = time.perf_counter()
            invoke()
            round_trips.append((time.perf_counter() - t0) * 1000)
        time.sleep(1.0)  # the exporter's last batch (OTEL_BSP_SCHEDULE_DELAY 200 ms) is in the figure
        spent = cpu_ns(server.pid()) - before
        return {"server_cpu_us_per_invoke": spent / invokes / 1000, "p50_ms": percentile(round_trips, 50),
                "p99_ms": percentile(round_trips, 99), "exports": receiver.exports if receiver else 0}
    finally:
        server.close()


def run(invokes: int, rounds: int, baseline: str | None = None) -> dict[str, Any]:
    receiver = Receiver()
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
          "OTEL_TRACES_SAMPLER_ARG": "1"}
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ""}
    cases = {"off": (off, "PassThrough", None), "on, not sampled": (on, "PassThrough", None),
             "on, every invocation sampled": (on, "Active", receiver)}
    if baseline:
        cases = {"baseline (tracing absent)": ({**off, "PYTHONPATH": baseline}, "PassThrough", None), **cases}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleaved, so that the machine's load falls on every case alike
        for name, (env, mode, r) in cases.items():
            results[name].append(measure(invokes, mode, env, r))
    return {"invokes": invokes, "rounds": rounds, "load": os.getloadavg(), "cases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invokes", type=int, default=3000, help="warm invocations per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="the src folder of a server to compare with")
    args = parser.parse_args()
    result = run(args.invokes, args.rounds, args.baseline)
    path = write_result("tracing", result)
    print(f"{args.invokes} warm invocations per case and round; load {result['load'][0]:.2f}")
    print(f"{'case':<30}{'server CPU µs/invoke (each round)':>40}{'p50 ms':>10}")
    for name, rounds in result["cases"].items():
        cpu = " ".join(f"{r['server_cpu_us_per_invoke']:.1f}" for r in rounds)
        p50 = min(r["p50_ms"] for r in rounds)
        print(f"{name:<30}{cpu:>40}{p50:>10.3f}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
