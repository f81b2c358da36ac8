"""FilterLogEvents over a function's last day: one million stored lines, goal under a second a call.

The log group is written as the platform writes it (LogStore's JSON lines, one file per
environment's stream, each environment living a while within the last 24 hours): request
lines, 1% `[ERROR]` lines, 10% JSON lines with a latency, a few timeouts, and Lambda's
START/END/REPORT. Each query is one FilterLogEvents call over the last day (or hour), timed
in-process on LogsService (what the API runs on its logs thread), best of `--repeat`.

    .venv/bin/python -m bench.logs_filter [--lines 1000000] [--streams 48] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from lambdastack.observe.cloudwatch_logs.service import LogsService
from lambdastack.observe.logs import LogStore

ACCOUNT, REGION, FUNCTION = "000000000000", "us-east-1", "bench-fn"
GROUP = f"/aws/lambda/{FUNCTION}"
GOAL_S = 1.0
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def write_group(root: Path, lines: int, streams: int, now: int, seed: int = 7) -> int:
    """`lines` events over the last day in `streams` streams; how many bytes were written."""
    rng = random.Random(seed)
    per_stream = lines // streams
    span = DAY_MS // streams
    written = 0
    for s in range(streams):
        begin = now - DAY_MS + s * span
        day = dt.datetime.fromtimestamp(begin / 1000, dt.UTC).strftime("%Y/%m/%d")
        name = f"{day}/[$LATEST]{rng.getrandbits(128):032x}"
        path = root / ACCOUNT / REGION / FUNCTION / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        out = bytearray()
        for i in range(per_stream):
            timestamp = begin + i * span // per_stream
            roll = rng.random()
            if roll < 0.01:
                message = f"[ERROR] request {s}-{i} failed: connection reset"
            elif roll < 0.11:
                message = json.dumps({"level": "INFO", "latency": rng.randint(1, 1000), "path": "/orders"})
            elif roll < 0.1101:
                message = "Task timed out after 3.00 seconds"
            elif i % 10 == 0:
                message = f"REPORT RequestId: {rng.getrandbits(64):016x}\tDuration: 1.2 ms\tBilled Duration: 2 ms"
            else:
                message = f"INFO request {s}-{i} handled in {rng.randint(1, 50)} ms"
            out += orjson.dumps({"timestamp": timestamp, "message": message}) + b"\n"
        path.write_bytes(bytes(out))
        written += len(out)
    return written


QUERIES: list[tuple[str, str | None, int]] = [
    ("last day, no pattern (first page)", None, DAY_MS),
    ("last day, ERROR (1%)", "ERROR", DAY_MS),
    ('last day, "Task timed out" (0.01%)', '"Task timed out"', DAY_MS),
    ("last day, { $.latency > 990 } (0.1%)", "{ $.latency > 990 }", DAY_MS),
    ("last day, ?ERROR ?timed -reset", "?ERROR ?timed -reset", DAY_MS),
    ("last hour, no pattern (first page)", None, HOUR_MS),
]


def run(lines: int, streams: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="logs-bench-") as folder:
        root = Path(folder) / "logs"
        now = int(time.time() * 1000)
        size = write_group(root, lines, streams, now)
        service = LogsService(LogStore(root), lambda *_: None)
        rows = []
        for label, pattern, window in QUERIES:
            params: dict[str, Any] = {"logGroupName": GROUP, "startTime": now - window, "endTime": now + 1}
            if pattern is not None:
                params["filterPattern"] = pattern
            best = float("inf")
            found = 0
            for _ in range(repeat):
                began = time.perf_counter()
                answer = service.filter_log_events(ACCOUNT, REGION, params)
                best = min(best, time.perf_counter() - began)
                found = len(answer["events"])
            rows.append({"query": label, "events": found, "seconds": round(best, 4), "met": best < GOAL_S})
        return {"lines": lines, "streams": streams, "bytes": size, "goal_s": GOAL_S, "queries": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    result = run(args.lines, args.streams, args.repeat)
    print(f"FilterLogEvents over {result['lines']:,} lines ({result['bytes'] / 1e6:.0f} MB, "
          f"{result['streams']} streams), best of {args.repeat}:")
    print("| query | events | seconds | under 1 s |")
    print("| --- | --- | --- | --- |")
    for row in result["queries"]:
        print(f"| {row['query']} | {row['events']} | {row['seconds']:.3f} | {'yes' if row['met'] else 'no'} |")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"logs_filter-{stamp}.json", "logs_filter-latest.json"):
        (args.results_dir / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
