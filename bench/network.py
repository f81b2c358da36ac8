"""What networking and disk-backed /tmp cost: cold starts, connects, HTTP, downloads, memory.

    python -m bench.network [--cold 30] [--samples 200] [--idle 50]

"The internet" is the tests' own host (tests/nethosts.py): a network namespace with the
public test address 198.51.100.10 and an HTTP server. Figures measured inside a function are
taken by the function itself (time.perf_counter around each operation); the same operations
from the host itself, in this process, give the ratio that isolation costs.

- cold start: end to end through Invoke, one new function at a time, from the pre-built pool
  (default) and with `--prebuilt 0`, each with networking on and with `--egress none`;
- TCP connect from a warm function to a host service on an allowed port
  (host.lambdastack.internal), against a connect to the same service from the host;
- HTTP round trip (a new connection each) from a function to the test host, against the host;
- a 100 MB download into /tmp, against the host writing it to a file on the same disk;
- memory of idle environments with their network and /tmp (PSS of their processes, and what
  their cgroups are charged);
- under `--isolation userns` (user-mode networking through slirp4netns, what a server without
  root gives): cold starts with the network on and with `--egress none`, an HTTP round trip
  and the 100 MB download (`--no-user-mode` skips it).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procmem
from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import nethosts

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
URL = f"http://{nethosts.PUBLIC}/"
BIG_URL = f"http://{nethosts.PUBLIC}/big"

PROBE = """
import os, socket, time, urllib.request

def handler(event, context):
    if event.get("connect"):
        host, port, n = event["connect"]
        times = []
        for _ in range(n):
            t = time.perf_counter()
            socket.create_connection((host, port), timeout=5).close()
            times.append((time.perf_counter() - t) * 1000)
        return times
    if event.get("http"):
        url, n = event["http"]
        times = []
        for _ in range(n):
            t = time.perf_counter()
            urllib.request.urlopen(url, timeout=5).read()
            times.append((time.perf_counter() - t) * 1000)
        return times
    if event.get("download"):
        t = time.perf_counter()
        size = _download(event["download"], "/tmp/download")
        seconds = time.perf_counter() - t
        os.unlink("/tmp/download")
        return {"mb": size / 2**20, "seconds": seconds}
    return "ok"

def _download(url, path):
    size = 0
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
        while chunk := response.read(1 << 20):
            f.write(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return size
"""


def _host_download(url: str, folder: str) -> dict[str, float]:
    """The function's own download code (PROBE's `_download`), run on the host."""
    code: dict[str, Any] = {}
    exec(compile(PROBE, "probe.py", "exec"), code)
    path = Path(folder) / "download"
    t = time.perf_counter()
    size = code["_download"](url, str(path))
    seconds = time.perf_counter() - t
    path.unlink()
    return {"mb": size / 2**20, "seconds": seconds}


def _create(lam: Any, name: str, source: str = PROBE, **config: Any) -> str:
    lam.create_function(FunctionName=name, Runtime=RUNTIME, Role="arn:aws:iam::000000000000:role/bench",
                        Handler="probe.handler", Code={"ZipFile": zip_of({"probe.py": source})}, Timeout=120,
                        **config)
    return name


def _invoke(lam: Any, name: str, event: Any = None) -> Any:
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    body = json.loads(r["Payload"].read())
    if r.get("FunctionError"):
        raise RuntimeError(f"{name}: {body}")
    return body


def _cold_starts(count: int, *extra: str) -> dict[str, float]:
    server = BenchServer(*extra)
    try:
        lam = server.client()
        _invoke(lam, _create(lam, "warmup"))  # the zygote and the pre-built pool
        times = []
        for i in range(count):
            name = _create(lam, f"cold{i}", NOOP)  # the environment's cost, not the function's imports
            while lam.get_function_configuration(FunctionName=name)["State"] != "Active":
                time.sleep(0.05)
            time.sleep(0.3)  # the pool refills between cold starts, as between real ones
            invoke = Invoker(server.port, name)  # raw HTTP: no SDK time in the figure
            t = time.perf_counter()
            invoke()
            times.append((time.perf_counter() - t) * 1000)
        return {"p50": percentile(times, 50), "p99": percentile(times, 99)}
    finally:
        server.close()


class _HostService:
    """A TCP service on the host's loopback that accepts and closes (a stand-in for a database)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()


def _user_mode(cold: int, samples: int) -> dict[str, Any]:
    """User-mode networking: the same server as root, with `--isolation userns`."""
    result: dict[str, Any] = {"cold_start_ms": {
        "userns, network on": _cold_starts(cold, "--isolation", "userns"),
        "userns, --egress none": _cold_starts(cold, "--isolation", "userns", "--egress", "none"),
    }}
    server = BenchServer("--isolation", "userns")
    try:
        lam = server.client()
        probe = _create(lam, "probe", MemorySize=1024)
        _invoke(lam, probe)
        result["http_round_trip_ms"] = _stats(_invoke(lam, probe, {"http": [URL, samples]}))
        down = _invoke(lam, probe, {"download": BIG_URL})
        result["download_100mb_mb_per_s"] = down["mb"] / down["seconds"]
    finally:
        server.close()
    return result


def run(cold: int, samples: int, idle: int, user_mode: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"runtime": RUNTIME, "samples": samples}
    with nethosts.internet():
        result["cold_start_ms"] = {
            "prebuilt, network on": _cold_starts(cold),
            "prebuilt, --egress none": _cold_starts(cold, "--egress", "none"),
            "on demand (--prebuilt 0), network on": _cold_starts(cold, "--prebuilt", "0"),
            "on demand (--prebuilt 0), --egress none": _cold_starts(cold, "--prebuilt", "0", "--egress", "none"),
        }
        service = _HostService()
        server = BenchServer("--allow-host-port", str(service.port))
        try:
            lam = server.client()
            probe = _create(lam, "probe", MemorySize=1024, EphemeralStorage={"Size": 1024})
            _invoke(lam, probe)
            inside = _invoke(lam, probe, {"connect": ["host.lambdastack.internal", service.port, samples]})
            outside = []
            for _ in range(samples):
                t = time.perf_counter()
                socket.create_connection(("127.0.0.1", service.port), timeout=5).close()
                outside.append((time.perf_counter() - t) * 1000)
            result["connect_ms"] = {"function": _stats(inside), "host": _stats(outside)}
            inside = _invoke(lam, probe, {"http": [URL, samples]})
            outside = []
            for _ in range(samples):
                t = time.perf_counter()
                urllib.request.urlopen(URL, timeout=5).read()
                outside.append((time.perf_counter() - t) * 1000)
            result["http_round_trip_ms"] = {"function": _stats(inside), "host": _stats(outside)}
            down_in = _invoke(lam, probe, {"download": BIG_URL})
            with tempfile.TemporaryDirectory(dir=str(Path.home())) as folder:
                down_out = _host_download(BIG_URL, folder)
            result["download_100mb_mb_per_s"] = {"function": down_in["mb"] / down_in["seconds"],
                                                  "host": down_out["mb"] / down_out["seconds"]}
            for i in range(idle):
                _invoke(lam, _create(lam, f"idle{i}", NOOP, MemorySize=128))
            time.sleep(1)
            groups = procmem.environment_cgroups(server.pid())
            usage = procmem.usage_of_all([pid for g in groups for pid in procmem.cgroup_pids(g)])
            charged = sum(procmem.cgroup_charged_kb(g) for g in groups)
            result["idle_environments"] = {
                "count": len(groups), "pss_mb_each": usage.pss_mb / max(1, len(groups)),
                "charged_mb_each": charged / 1024 / max(1, len(groups)),
                "fit_in_24_gb": int(24 * 1024 / max(0.001, usage.pss_mb / max(1, len(groups)))),
            }
        finally:
            server.close()
            service.sock.close()
        if user_mode:
            result["user_mode"] = _user_mode(cold, samples)
    return result


def _stats(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", type=int, default=30, help="cold starts per configuration")
    parser.add_argument("--samples", type=int, default=200, help="connects and HTTP round trips")
    parser.add_argument("--idle", type=int, default=50, help="idle environments to measure memory on")
    parser.add_argument("--no-user-mode", action="store_true", help="skip the user-mode networking figures")
    args = parser.parse_args()
    result = run(args.cold, args.samples, args.idle, user_mode=not args.no_user_mode)
    path = write_result("network", result)
    print(f"runtime: {result['runtime']}")
    print(f"{'workload':<52}{'p50':>10}{'p99':>10}")
    for label, s in result["cold_start_ms"].items():
        print(f"{'cold start, ' + label + ', ms':<52}{s['p50']:>10.2f}{s['p99']:>10.2f}")
    for what, key in (("TCP connect to an allowed host port", "connect_ms"),
                      ("HTTP round trip to the test host", "http_round_trip_ms")):
        for side, s in result[key].items():
            print(f"{what + ', ' + side + ', ms':<52}{s['p50']:>10.3f}{s['p99']:>10.3f}")
    d = result["download_100mb_mb_per_s"]
    print(f"100 MB download into /tmp: function {d['function']:.0f} MB/s, host {d['host']:.0f} MB/s "
          f"(ratio {d['function'] / d['host']:.2f})")
    m = result["idle_environments"]
    print(f"{m['count']} idle 128 MB environments: {m['pss_mb_each']:.2f} MB PSS each "
          f"({m['charged_mb_each']:.2f} MB charged to each cgroup); {m['fit_in_24_gb']} fit in 24 GB")
    if "user_mode" in result:
        u = result["user_mode"]
        for label, s in u["cold_start_ms"].items():
            print(f"{'cold start, ' + label + ', ms':<52}{s['p50']:>10.2f}{s['p99']:>10.2f}")
        s = u["http_round_trip_ms"]
        print(f"{'HTTP round trip to the test host, userns, ms':<52}{s['p50']:>10.3f}{s['p99']:>10.3f}")
        print(f"100 MB download into /tmp, userns: {u['download_100mb_mb_per_s']:.0f} MB/s")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
