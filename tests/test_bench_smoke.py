"""The comparison benchmark runs end to end at tiny sizes: it prints its table and writes its JSON.

No figure is judged here; timing goals live in the benchmark itself.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compare(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.compare", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def as_printed(value: float) -> float:
    """A figure below 100 as the table prints it: two decimals below 10, one from 10."""
    return round(value, 2 if value < 10 else 1)


def test_warm_alone_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    done = compare("--only", "warm", "--no-peers", "--warm", "20", "--warmup", "5", "--results-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr

    lines = done.stdout.splitlines()
    assert "| workload | goal | lambdastack | met |" in lines
    p50_row = next(line for line in lines if line.startswith("| warm round trip p50, ms |"))
    cells = [c.strip() for c in p50_row.strip("|").split("|")]
    assert cells[1] == "≤ 0.7"
    assert float(cells[2]) > 0
    assert cells[3] in ("yes", "no")
    assert not any("cold" in line or "throughput" in line for line in lines if line.startswith("|"))

    latest = json.loads((tmp_path / "compare-latest.json").read_text())
    stamped = [p for p in tmp_path.glob("compare-*.json") if p.name != "compare-latest.json"]
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == latest
    assert f"written to {stamped[0]}" in done.stdout
    warm = latest["results"]["warm"]["lambdastack"]
    assert warm["n"] == 20 and math.isfinite(warm["p50"]) and warm["p99"] >= warm["p50"] > 0
    assert list(latest["results"]) == ["warm"]
    assert latest["order"] == ["lambdastack"]
    assert latest["sizes"]["warm"] == 20


def test_a_peer_gets_a_column_with_ratios_and_a_skip_says_why(tmp_path: Path) -> None:
    done = compare("--only", "cold,warm", "--peers", "python3-process", "--cold", "3", "--cold-gap", "0",
                   "--warm", "10", "--warmup", "2", "--results-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr

    lines = done.stdout.splitlines()
    assert "| workload | goal | lambdastack | met | python3-process |" in lines
    cold_row = next(line for line in lines if line.startswith("| new environment p50, ms (pre-built pool on) |"))
    peer_cell = cold_row.strip("|").split("|")[4].strip()
    value, ratio = peer_cell.split(" (")
    latest = json.loads((tmp_path / "compare-latest.json").read_text())
    cold = latest["results"]["cold"]
    assert float(value.replace(",", "")) > 0
    assert ratio == f"{cold['lambdastack']['p50'] / cold['python3-process']['p50']:.2f}x)"
    assert cold["python3-process"]["n"] == 3 and cold["lambdastack"]["on_demand"]["n"] == 3

    warm_row = next(line for line in lines if line.startswith("| warm round trip p50, ms |"))
    assert warm_row.rstrip().endswith("| — |")
    assert "- warm / python3-process: skipped: nothing stays warm: every invocation starts a new process" in lines


def test_an_unknown_workload_is_refused(tmp_path: Path) -> None:
    done = compare("--only", "warm,coldd", "--no-peers", "--results-dir", str(tmp_path), timeout=60)
    assert done.returncode == 2
    assert "unknown workload 'coldd'" in done.stderr
    assert not list(tmp_path.iterdir())


def test_rounds_give_medians_and_lambdastack_range(tmp_path: Path) -> None:
    done = compare("--only", "warm", "--no-peers", "--rounds", "2", "--warm", "10", "--warmup", "2",
                   "--results-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr

    warm = json.loads((tmp_path / "compare-latest.json").read_text())["results"]["warm"]["lambdastack"]
    rounds = [r["p50"] for r in warm["rounds"]]
    assert len(rounds) == 2 and warm["p50"] == sum(rounds) / 2
    assert "| workload | goal | lambdastack | lambdastack range | met |" in done.stdout.splitlines()
    row = next(line for line in done.stdout.splitlines() if line.startswith("| warm round trip p50, ms |"))
    low, high = row.strip("|").split("|")[3].strip().split("-")
    assert float(low) == as_printed(min(rounds))
    assert float(high) == as_printed(max(rounds))
