"""What a Function URL costs: warm HTTP round trips and throughput through a URL, beside
serverless-offline's `httpApi` events in the same run.

    python -m bench.function_urls [--requests 3000] [--clients 8] [--seconds 5] [--no-peers]

A trivial Python handler (`{"statusCode": 200, "body": "ok"}`, 1,769 MB: one vCPU) behind an
AuthType NONE URL.
Round trips are sequential GETs on one keep-alive connection (http.client, Host header);
throughput is `wrk` with 8 connections. The same handler through Invoke is measured in the
same run, so the ratio is what the URL layer adds. serverless-offline (installed into
bench/.peers on first use) serves the same handler behind an `httpApi` route, measured the
same way.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import BenchServer, Invoker, percentile, write_result, zip_of

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
HANDLER = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0 end
function response(status, headers, body) if status ~= 200 then failed = failed + 1 end end
function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + t:get("failed") end
  io.write(string.format("BENCH requests=%d failed=%d duration_us=%d p50_us=%d p99_us=%d\\n",
    summary.requests, failed_total, summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50": percentile(times, 50), "p99": percentile(times, 99)}


def _url_round_trips(port: int, host: str, n: int, path: str = "/") -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(n + 100):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the URL answered {response.status}")
        if i >= 100:  # warm-up first
            times.append((time.perf_counter() - t) * 1000)
    return times


def _invoke_round_trips(port: int, name: str, n: int) -> list[float]:
    invoke = Invoker(port, name)
    times = []
    for i in range(n + 100):
        t = time.perf_counter()
        invoke()
        if i >= 100:
            times.append((time.perf_counter() - t) * 1000)
    return times


def _wrk(port: int, host: str, clients: int, seconds: float, path: str = "/") -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed"}
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "get.lua"
        script.write_text(WRK_SCRIPT)
        done = subprocess.run(
            ["wrk", "-t", "2", "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
             "-H", f"Host: {host}", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, timeout=seconds + 60,
        )
    match = re.search(r"BENCH (.*)", done.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    figures = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
    duration = figures["duration_us"] / 1e6
    return {"requests_per_s": (figures["requests"] - figures["failed"]) / duration, "failed": figures["failed"],
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000, "clients": clients}


def _serverless_offline(requests: int, clients: int, seconds: float) -> dict[str, Any]:
    from bench.peers.serverless_offline import ServerlessOffline
    from bench.workload import Skipped

    try:
        peer = ServerlessOffline()
    except Skipped as e:
        return {"skipped": str(e)}
    with peer.http_function(HANDLER) as offline:
        host = f"127.0.0.1:{offline.http_port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                _url_round_trips(offline.http_port, host, 1, "/web")
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return {
            "version": peer.version(),
            "round_trip_ms": _stats(_url_round_trips(offline.http_port, host, requests, "/web")),
            "throughput": _wrk(offline.http_port, host, clients, seconds, "/web"),
        }


def run(requests: int, clients: int, seconds: float, peers: bool = True) -> dict[str, Any]:
    result = _lambdastack(requests, clients, seconds)
    if peers:
        result["serverless_offline_http_api"] = _serverless_offline(requests, clients, seconds)
    return result


def _lambdastack(requests: int, clients: int, seconds: float) -> dict[str, Any]:
    server = BenchServer()
    try:
        lam = server.client()
        lam.create_function(FunctionName="web", Runtime=RUNTIME, Role="arn:aws:iam::000000000000:role/bench",
                            Handler="app.handler", Code={"ZipFile": zip_of({"app.py": HANDLER})},
                            MemorySize=1769)  # one full vCPU, as the other benchmarks: 128 MB gets 7% of a core
        url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
        lam.add_permission(FunctionName="web", StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                           FunctionUrlAuthType="NONE")
        lam.add_permission(FunctionName="web", StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                           InvokedViaFunctionUrl=True)
        host = url.split("//", 1)[1].split(":", 1)[0]
        return {
            "runtime": RUNTIME,
            "url_round_trip_ms": _stats(_url_round_trips(server.port, host, requests)),
            "invoke_round_trip_ms": _stats(_invoke_round_trips(server.port, "web", requests)),
            "url_throughput": _wrk(server.port, host, clients, seconds),
        }
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="sequential round trips per path")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration")
    parser.add_argument("--no-peers", action="store_true", help="measure lambdastack alone")
    args = parser.parse_args()
    result = run(args.requests, args.clients, args.seconds, peers=not args.no_peers)
    path = write_result("function_urls", result)
    url, direct = result["url_round_trip_ms"], result["invoke_round_trip_ms"]
    print(f"warm round trip through the URL:  p50 {url['p50']:.3f} ms  p99 {url['p99']:.3f} ms")
    print(f"warm round trip through Invoke:   p50 {direct['p50']:.3f} ms  p99 {direct['p99']:.3f} ms")
    t = result["url_throughput"]
    if "skipped" in t:
        print(f"throughput: {t['skipped']}")
    else:
        print(f"throughput through the URL, {t['clients']} connections: {t['requests_per_s']:,.0f} requests/s "
              f"(p50 {t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms, {t['failed']} failed)")
    peer = result.get("serverless_offline_http_api")
    if peer and "skipped" in peer:
        print(f"serverless-offline: {peer['skipped']}")
    elif peer:
        r, pt = peer["round_trip_ms"], peer["throughput"]
        print(f"serverless-offline httpApi:       p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  "
              f"({peer['version']})")
        if "requests_per_s" in pt:
            print(f"throughput through serverless-offline: {pt['requests_per_s']:,.0f} requests/s "
                  f"(p50 {pt['p50_ms']:.2f} ms, p99 {pt['p99_ms']:.2f} ms, {pt['failed']} failed)")
            if "requests_per_s" in t:
                print(f"ratios (lambdastack / serverless-offline): round trip p50 {url['p50'] / r['p50']:.2f}x, "
                      f"p99 {url['p99'] / r['p99']:.2f}x, throughput {t['requests_per_s'] / pt['requests_per_s']:.2f}x")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
