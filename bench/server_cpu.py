"""The server's own CPU time per request: Invoke, a Function URL and an HTTP API route.

Wall-clock throughput on a shared machine moves with whatever else runs; the CPU time the
server process spends (utime + stime of all its threads, from /proc) per request does not.
Each front is driven by `wrk` with keep-alive connections for a few seconds, after an untimed
warm-up; the environments' own processes are not counted (they are not the server's threads).

    .venv/bin/python -m bench.server_cpu [--seconds 5] [--connections 8] [--only invoke,url,route]
                                         [--auth none|sigv4] [--port N]

`--auth sigv4` runs the server so, with a key of `lambdastack keys`: the Invoke requests carry one
SigV4 signature made up front (valid for 15 minutes), so the figure includes the server's check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from bench import loadgen
from bench.common import BenchServer, zip_of
from bench.handlers import HANDLER, NOOP
from bench.lambdastack_target import FULL_CORE_MB, ROLE, RUNTIME
from lambdastack.auth.keys import KeyStore

URL_HANDLER = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, connections: int, seconds: float, method: str, body: str, host: str | None,
         signed: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        script = Path(tmp) / "req.lua"
        script.write_text(f'wrk.method = "{method}"\nwrk.body = {json.dumps(body)}\n'
                          'wrk.headers["Content-Type"] = "application/json"\n'
                          'function done(s, l, r) io.write(string.format("BENCH %d %d %d %d\\n", s.requests, '
                          's.errors.status + s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout, '
                          'l:percentile(50), l:percentile(99))) end\n')
        headers = ["-H", f"Host: {host}"] if host else []
        for name, value in (signed or {}).items():
            headers += ["-H", f"{name}: {value}"]
        done = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                               *headers, "-s", str(script), url], capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    requests, errors, p50, p99 = (int(x) for x in line.split()[1:])
    return {"requests": requests, "errors": errors, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000}


def measure(server: BenchServer, path: str, connections: int, seconds: float, method: str = "POST",
            body: str = loadgen.EVENT.decode(), host: str | None = None,
            key: tuple[str, str] | None = None) -> dict[str, Any]:
    url = server.url + path
    signed = _signature(url, method, body, key) if key is not None else None
    _wrk(url, connections, 1.0, method, body, host, signed)
    before = cpu_seconds(server.pid())
    result = _wrk(url, connections, seconds, method, body, host, signed)
    used = cpu_seconds(server.pid()) - before
    result["requests_per_s"] = result["requests"] / seconds
    result["server_cpu_us_per_request"] = used / max(1, result["requests"]) * 1e6
    return result


def _signature(url: str, method: str, body: str, key: tuple[str, str]) -> dict[str, str]:
    """The headers of one SigV4 signature of the request wrk repeats (as boto3 would sign it)."""
    request = AWSRequest(method=method, url=url, data=body.encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(*key), "lambda", "us-east-1").add_auth(request)
    return {"Authorization": request.headers["Authorization"], "X-Amz-Date": request.headers["X-Amz-Date"]}


def _client(server: BenchServer, service: str, key: tuple[str, str] | None) -> Any:
    if key is None:
        return server.client(service)
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=key[0],
                        aws_secret_access_key=key[1], config=Config(retries={"total_max_attempts": 1}))


def _host_of(url: str) -> str:
    return url.split("//", 1)[1].split(":", 1)[0].rstrip("/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", default="invoke,url,route")
    parser.add_argument("--auth", choices=["none", "sigv4"], default="none")
    parser.add_argument("--port", type=int, default=None, help="serve on this port (default: a free one)")
    args = parser.parse_args()
    fronts = set(args.only.split(","))
    server = BenchServer("--auth", args.auth, port=args.port)
    try:
        key: tuple[str, str] | None = None
        if args.auth == "sigv4":
            made, secret = KeyStore(Path(server.tmp.name) / "data").create("000000000000", "bench")
            key = (made.access_key_id, secret)
        lam = _client(server, "lambda", key)
        out: dict[str, Any] = {"load": os.getloadavg(), "auth": args.auth}
        if "invoke" in fronts:
            lam.create_function(FunctionName="noop", Role=ROLE, Handler=HANDLER, Runtime=RUNTIME,
                                MemorySize=FULL_CORE_MB, Code={"ZipFile": zip_of({"app.py": NOOP})})
            out["invoke"] = measure(server, "/2015-03-31/functions/noop/invocations", args.connections, args.seconds,
                                    key=key)
        if fronts & {"url", "route"}:
            lam.create_function(FunctionName="web", Role=ROLE, Handler=HANDLER, Runtime=RUNTIME,
                                MemorySize=FULL_CORE_MB, Code={"ZipFile": zip_of({"app.py": URL_HANDLER})})
            lam.get_waiter("function_active_v2").wait(FunctionName="web")
        if "url" in fronts:
            url = lam.create_function_url_config(FunctionName="web", AuthType="NONE")["FunctionUrl"]
            lam.add_permission(FunctionName="web", StatementId="url", Action="lambda:InvokeFunctionUrl",
                               Principal="*", FunctionUrlAuthType="NONE")
            lam.add_permission(FunctionName="web", StatementId="invoke", Action="lambda:InvokeFunction",
                               Principal="*", InvokedViaFunctionUrl=True)
            out["url"] = measure(server, "/web", args.connections, args.seconds, "GET", "", _host_of(url))
        if "route" in fronts:
            api = _client(server, "apigatewayv2", key)
            arn = lam.get_function(FunctionName="web")["Configuration"]["FunctionArn"]
            created = api.create_api(Name="bench", ProtocolType="HTTP", Target=arn, RouteKey="ANY /{proxy+}")
            lam.add_permission(FunctionName="web", StatementId="api", Action="lambda:InvokeFunction",
                               Principal="apigateway.amazonaws.com",
                               SourceArn=f"arn:aws:execute-api:us-east-1:000000000000:{created['ApiId']}/*")
            out["route"] = measure(server, "/web", args.connections, args.seconds, "GET", "",
                                   _host_of(created["ApiEndpoint"]))
        out["load_after"] = os.getloadavg()
        print(json.dumps(out, indent=2))
    finally:
        server.close()


if __name__ == "__main__":
    main()
