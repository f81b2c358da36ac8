"""The search over stored streams (observe/cloudwatch_logs/storage.py): bisecting by time and
finding candidate lines by their bytes gives exactly what reading every line gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from lambdastack.observe.cloudwatch_logs import storage
from lambdastack.observe.cloudwatch_logs.patterns import compile_pattern, prefilter

MESSAGES = [
    "START RequestId: 1 Version: $LATEST", "[ERROR] boom", "ERROR: with \"quotes\" and \\ backslash",
    "\ttabbed ERROR line", "INFO ok", "Task timed out after 3.00 seconds", "naïve café ERROR", "ERRORS plural",
    json.dumps({"level": "ERROR", "latency": 150}), json.dumps({"level": "INFO", "latency": 5}),
    "  " + json.dumps({"latency": 500}), json.dumps(["a", 1]), "", "REPORT RequestId: 1\tDuration: 1 ms",
]
PATTERNS = ["", "ERROR", '"ERROR:"', "?ERROR ?INFO", "ERROR -boom", '"with \\"quotes\\""', "café",
            "{ $.latency > 100 }", '{ $.level = "ERROR" }', "{ $[0] = a }", "%ERR[A-Z]+%", "-ERROR", "\\",
            "[level, ...]", "[w1 = INFO, w2]"]


def write(path: Path, seed: int, steps_back: bool = False) -> list[int]:
    rng = random.Random(seed)
    timestamp = 1_700_000_000_000
    stamps = []
    out = bytearray()
    for _ in range(2000):
        timestamp += rng.choice((0, 0, 1, 3, 250))
        if steps_back and rng.random() < 0.01:
            timestamp -= 40  # the clock stepped back between two appends
        stamps.append(timestamp)
        out += orjson.dumps({"timestamp": timestamp, "message": rng.choice(MESSAGES)}) + b"\n"
    path.write_bytes(bytes(out))
    return stamps


@pytest.mark.parametrize("steps_back", [False, True])
def test_scan_finds_what_reading_every_line_finds(tmp_path: Path, steps_back: bool) -> None:
    path = tmp_path / "stream.jsonl"
    stamps = write(path, 3, steps_back)
    ranges = [(None, None), (stamps[500], None), (None, stamps[1500]), (stamps[300], stamps[301] + 1),
              (stamps[0], stamps[-1] + 1), (stamps[-1] + 1, None), (stamps[700], stamps[700])]
    for pattern in PATTERNS:
        matches, needles = compile_pattern(pattern), prefilter(pattern)
        for start, end in ranges:
            expected = [e for e in storage.events(path, start, end) if matches(e.message)]
            found = [e for e in storage.scan(path, start, end, needles.every, needles.some) if matches(e.message)]
            assert found == expected, (pattern, start, end)


def test_ranks_count_the_events_of_the_same_millisecond(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"timestamp": t, "message": m}) + b"\n"
                              for t, m in [(1, "a"), (2, "b ERROR"), (2, "c"), (2, "d ERROR"), (3, "e ERROR")]))
    assert [(e.timestamp, e.rank, e.message) for e in storage.scan(path, None, None, (b"ERROR",))] == [
        (2, 0, "b ERROR"), (2, 2, "d ERROR"), (3, 0, "e ERROR")]


def test_lines_of_another_layout_are_read_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    path.write_text('{"message": "x ERROR", "timestamp": 5}\n{"message": "y", "timestamp": 6}\n')
    assert [e.message for e in storage.scan(path, 0, 10, (b"ERROR",))] == ["x ERROR", "y"]  # the matcher decides


def test_the_benchmark_runs_at_a_tiny_size(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "bench.logs_filter", "--lines", "4000", "--streams", "4",
                           "--repeat", "1", "--results-dir", str(tmp_path)], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| query | events | seconds | under 1 s |" in done.stdout
    latest = json.loads((tmp_path / "logs_filter-latest.json").read_text())
    assert latest["lines"] == 4000 and len(latest["queries"]) == 6
    assert latest["queries"][0]["events"] == 4000  # no pattern: every line of the day
