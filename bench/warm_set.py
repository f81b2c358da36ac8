"""Many warm functions: 8 clients cycling over 30 and 100 functions of 256 MB and 40 of 1,024 MB.

Each client's next request goes to the next function of the set, so every function is
invoked in turn; with all of them warm that is as fast as one function, and when the host's
memory budget cannot hold them all, nearly every invocation evicts one environment and
cold-starts another. All three sets run on one server in the same run, and the ratio of each
to the 30-function figure is printed.

    python -m bench.warm_set [--seconds 10] [--declared]

`--declared` runs the server with `--memory-budget` of the host's memory less 10% (at least
1 GiB), charging each environment its full MemorySize: the rule before admission by real use.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen, procmem
from bench.common import NOOP, BenchServer, write_result

SETS = (("30 x 256 MB", 30, 256), ("100 x 256 MB", 100, 256), ("40 x 1024 MB", 40, 1024))
CLIENTS = 8
THREADS = 2

# After loadgen's script (which counts failures and prints the summary): each thread starts at
# its own offset and every request goes to the next function in the list.
CYCLE = """
local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("offset", thread_count * 17)
  table.insert(threads, thread)
end
function init(args) failed = 0; counter = offset or 0 end
function request()
  counter = counter + 1
  return wrk.format(nil, paths[(counter %% #paths) + 1])
end
"""


def _paths_lua(names: list[str]) -> str:
    return "paths = {" + ", ".join(f'"/2015-03-31/functions/{n}/invocations"' for n in names) + "}\n"


def cycle(port: int, names: list[str], seconds: float) -> dict[str, Any]:
    """`CLIENTS` keep-alive connections cycling over `names` for `seconds` (after 3 s untimed, in which
    the functions scale out to the concurrency the cycle gives each)."""
    with tempfile.TemporaryDirectory(prefix="bench-warm-set-") as tmp:
        script = Path(tmp) / "cycle.lua"
        body = loadgen._lua_string(loadgen.EVENT.decode())
        script.write_text(_paths_lua(names) + loadgen.WRK_SCRIPT % {"body": body} + CYCLE % {})
        result: dict[str, Any] = {}
        for duration in (3, max(1, round(seconds))):
            done = subprocess.run(
                ["wrk", "-t", str(THREADS), "-c", str(CLIENTS), "-d", f"{duration}s", "--timeout", "30s",
                 "-s", str(script), f"http://127.0.0.1:{port}/"],
                capture_output=True, text=True, timeout=duration + 120,
            )
            match = re.search(r"BENCH (.*)", done.stdout)
            if done.returncode != 0 or match is None:
                raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
            figures = {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}
            elapsed = figures["duration_us"] / 1e6
            result = {
                "requests": figures["requests"], "failed": figures["failed"] + figures["socket_errors"],
                "invokes_per_s": (figures["requests"] - figures["failed"]) / elapsed,
                "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            }
    return result


def declared_budget_mb() -> int:
    total = _meminfo_total_mb()
    return max(256, total - max(1024, total // 10))


def _meminfo_total_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--declared", action="store_true", help="charge full MemorySize (the former rule)")
    args = parser.parse_args()
    extra = ["--idle-timeout", "7200"]
    if args.declared:
        extra += ["--memory-budget", str(declared_budget_mb())]
    server = BenchServer(*extra)
    rows: list[dict[str, Any]] = []
    try:
        lam = server.client()
        for label, count, memory in SETS:
            names = [f"ws{memory}-{count}-{i}" for i in range(count)]
            for name in names:
                lam.create_function(FunctionName=name, Runtime="python3.12", Role="arn:aws:iam::000000000000:role/x",
                                    Handler="app.handler", Code={"ZipFile": _zip()}, MemorySize=memory)
            for name in names:
                lam.get_waiter("function_active_v2").wait(FunctionName=name)
                loadgen.first_invocation_ms(server.port, name)
            figures = cycle(server.port, names, args.seconds)
            figures.update(label=label, functions=count, memory_mb=memory, load=os.getloadavg()[0],
                           environments=len(procmem.environment_cgroups(server.pid())))
            rows.append(figures)
            print(f"{label:>14}: {figures['invokes_per_s']:8.0f} invokes/s  p50 {figures['p50_ms']:6.2f} ms  "
                  f"p99 {figures['p99_ms']:7.2f} ms  failed {figures['failed']}  "
                  f"environments {figures['environments']}  load {figures['load']:.2f}", flush=True)
    finally:
        server.close()
    base = rows[0]["invokes_per_s"]
    for row in rows[1:]:
        row["ratio_to_30"] = row["invokes_per_s"] / base if base else float("nan")
        print(f"{row['label']} / {rows[0]['label']}: {row['ratio_to_30']:.2f}x")
    write_result("warm_set" + ("-declared" if args.declared else ""),
                 {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "declared": args.declared,
                  "clients": CLIENTS, "seconds": args.seconds, "rows": rows})


def _zip() -> bytes:
    from bench.common import zip_of

    return zip_of({"app.py": NOOP})


if __name__ == "__main__":
    main()
