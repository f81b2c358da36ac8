"""What HTTP in front of a function costs: warm round trips and throughput through a Function
URL and through an HTTP API route, beside serverless-offline's `httpApi` events in the same run.

    python -m bench.http_fronts [--requests 3000] [--clients 8] [--seconds 5] [--no-peers]
        [--apps trivial,fastapi,fastapi-sync]

Three apps, each at 1,769 MB (one vCPU): a trivial Python handler (`{"statusCode": 200, "body":
"ok"}`), and a FastAPI app through Mangum (GET /web answers `{"ok": true}`), its packages
packed into the function, with an `async def` path operation as in FastAPI's first example
(`fastapi`) and with a plain `def` (`fastapi-sync`). Each is behind an AuthType NONE URL and
behind an HTTP API's `ANY /{proxy+}` route (payload 2.0). Round trips are sequential GETs on one keep-alive
connection (http.client, Host header); throughput is `wrk` with 8 connections. The trivial
handler through Invoke is measured in the same run, so the ratio is what the HTTP layer adds.
serverless-offline (installed into bench/.peers on first use) serves the same apps behind an
`httpApi` route, measured the same way.
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

from bench import host_tuning
from bench.common import BenchServer, Invoker, distribution_files, percentile, write_result, zip_of

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
HANDLER = 'def handler(event, context):\n    return {"statusCode": 200, "body": "ok"}\n'
# FastAPI's own first example (an `async def` path operation), through Mangum.
FASTAPI_APP = """
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI()


@app.get("/web")
async def web():
    return {"ok": True}


handler = Mangum(app, lifespan="off")
"""
# The same with a plain `def`: FastAPI runs it in a worker thread, which anyio stops when the
# request's task ends (each request is one under Mangum): a new thread, about 0.4 ms more each.
FASTAPI_SYNC_APP = FASTAPI_APP.replace("async def web", "def web")
APPS = {"trivial": (HANDLER, ()), "fastapi": (FASTAPI_APP, ("fastapi", "mangum")),
        "fastapi-sync": (FASTAPI_SYNC_APP, ("fastapi", "mangum"))}
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) failed = 0 end
function response(status, headers, body) if status ~= 200 then failed = failed + 1 end end
function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do failed_total = failed_total + t:get("failed") end
  io.write(string.format("BENCH requests=%d failed=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\\n",
    summary.requests, failed_total, summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50": percentile(times, 50), "p99": percentile(times, 99)}


def _round_trips(port: int, host: str, n: int, path: str = "/web") -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for i in range(n + 100):
        t = time.perf_counter()
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{host}{path} answered {response.status}")
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


def _wrk(port: int, host: str, clients: int, seconds: float, path: str = "/web") -> dict[str, Any]:
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
            "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "max_ms": figures["max_us"] / 1000, "clients": clients}


def _measured(port: int, host: str, requests: int, clients: int, seconds: float) -> dict[str, Any]:
    round_trips = _stats(_round_trips(port, host, requests))
    # Warm-up, for both sides: as many warm instances as connections (an app that takes a second to
    # import keeps starting instances for a while), until two short runs in a row have no cold start.
    clean = 0
    for _ in range(12):
        warm_up = _wrk(port, host, clients, 2)
        if "max_ms" not in warm_up:
            break
        clean = clean + 1 if warm_up["max_ms"] < 250 else 0
        if clean == 2:
            break
    return {"round_trip_ms": round_trips, "throughput": _wrk(port, host, clients, seconds)}


def _serverless_offline(app: str, requests: int, clients: int, seconds: float) -> dict[str, Any]:
    from bench.peers.serverless_offline import ServerlessOffline
    from bench.workload import Skipped

    try:
        peer = ServerlessOffline()
    except Skipped as e:
        return {"skipped": str(e)}
    source, packages = APPS[app]
    with tempfile.TemporaryDirectory(prefix="bench-http-lib-") as tmp:
        library = Path(tmp)
        for relative, data in distribution_files(*packages).items():
            (library / relative).parent.mkdir(parents=True, exist_ok=True)
            (library / relative).write_bytes(data)
        with peer.http_function(source, library if packages else None) as offline:
            host = f"127.0.0.1:{offline.http_port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    _round_trips(offline.http_port, host, 1)
                    break
                except (OSError, RuntimeError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            return {"version": peer.version(), **_measured(offline.http_port, host, requests, clients, seconds)}


def run(requests: int, clients: int, seconds: float, peers: bool = True,
        apps: tuple[str, ...] = tuple(APPS)) -> dict[str, Any]:
    result: dict[str, Any] = {"runtime": RUNTIME, "apps": {}}
    server = BenchServer()
    try:
        lam, gw = server.client(), server.client("apigatewayv2")
        for app in apps:
            result["apps"][app] = _lambdastack(server, lam, gw, app, requests, clients, seconds)
        if "trivial" in apps:
            result["invoke_round_trip_ms"] = _stats(_invoke_round_trips(server.port, "trivial", requests))
    finally:
        server.close()
    if peers:
        for app in apps:
            result["apps"][app]["serverless_offline_http_api"] = _serverless_offline(app, requests, clients, seconds)
    return result


def _lambdastack(server: BenchServer, lam: Any, gw: Any, app: str, requests: int, clients: int,
                 seconds: float) -> dict[str, Any]:
    source, packages = APPS[app]
    code = zip_of({"app.py": source, **distribution_files(*packages)})
    lam.create_function(FunctionName=app, Runtime=RUNTIME, Role="arn:aws:iam::000000000000:role/bench",
                        Handler="app.handler", Code={"ZipFile": code},
                        MemorySize=1769, Timeout=30)  # one full vCPU, as the other benchmarks
    lam.get_waiter("function_active_v2").wait(FunctionName=app)
    arn = lam.get_function(FunctionName=app)["Configuration"]["FunctionArn"]
    url = lam.create_function_url_config(FunctionName=app, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName=app, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=app, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    api = gw.create_api(Name=app, ProtocolType="HTTP", Target=arn, RouteKey="ANY /{proxy+}")
    lam.add_permission(FunctionName=app, StatementId="api", Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:000000000000:{api['ApiId']}/*")
    url_host = url.split("//", 1)[1].split(":", 1)[0]
    api_host = api["ApiEndpoint"].split("//", 1)[1].split(":", 1)[0]
    return {"function_url": _measured(server.port, url_host, requests, clients, seconds),
            "http_api": _measured(server.port, api_host, requests, clients, seconds)}


def _line(label: str, figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"{label:<34} {figures['skipped']}"
    r, t = figures["round_trip_ms"], figures["throughput"]
    line = f"{label:<34} p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms"
    if "requests_per_s" in t:
        line += f"  | {t['requests_per_s']:>7,.0f} req/s ({t['clients']} conns, p99 {t['p99_ms']:.2f} ms, " \
                f"{t['failed']} failed)"
    return line


def _ratio(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    r, p = ours["round_trip_ms"], peer["round_trip_ms"]
    text = f"p50 {r['p50'] / p['p50']:.2f}x, p99 {r['p99'] / p['p99']:.2f}x"
    if "requests_per_s" in ours["throughput"] and "requests_per_s" in peer["throughput"]:
        text += f", throughput {ours['throughput']['requests_per_s'] / peer['throughput']['requests_per_s']:.2f}x"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="sequential round trips per path")
    parser.add_argument("--clients", type=int, default=8, help="wrk connections")
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration")
    parser.add_argument("--no-peers", action="store_true", help="measure lambdastack alone")
    parser.add_argument("--apps", default=",".join(APPS), help="which apps: " + ", ".join(APPS))
    parser.add_argument("--cpu-latency-us", type=host_tuning.parse, default=None, metavar="US|off",
                        help="hold a PM QoS request for the whole run, for every system (default: off, for none)")
    args = parser.parse_args()
    apps = tuple(a for a in args.apps.split(",") if a)
    with host_tuning.cpu_latency_held(args.cpu_latency_us) as tuning:
        print(f"host tuning: {tuning}")
        result = run(args.requests, args.clients, args.seconds, peers=not args.no_peers, apps=apps)
    result["host_tuning"] = tuning
    path = write_result("http_fronts", result)
    direct = result.get("invoke_round_trip_ms")
    if direct is not None:
        print(f"{'trivial handler through Invoke':<34} p50 {direct['p50']:.3f} ms  p99 {direct['p99']:.3f} ms")
    for app, figures in result["apps"].items():
        print(f"{app}:")
        print(_line("  Function URL", figures["function_url"]))
        print(_line("  HTTP API route", figures["http_api"]))
        peer = figures.get("serverless_offline_http_api")
        if peer is not None:
            print(_line("  serverless-offline httpApi", peer))
            if "skipped" not in peer:
                print(f"  ratios lambdastack / serverless-offline: URL {_ratio(figures['function_url'], peer)}; "
                      f"HTTP API {_ratio(figures['http_api'], peer)}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
