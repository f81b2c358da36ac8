"""The comparison's table: one row per figure, lambdastack beside each peer with the ratio, and the goal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Results = dict[str, dict[str, dict[str, Any]]]  # workload -> system -> figures (or {"skipped"/"error": why})


@dataclass(frozen=True)
class Row:
    workload: str
    label: str
    key: str  # dotted path into lambdastack's figures
    peer_key: str | None = None  # into a peer's figures (default: the same as `key`)
    goal: float | None = None
    higher_is_better: bool = False

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        number = f"{int(self.goal):,}" if self.goal == int(self.goal) else f"{self.goal:g}"
        return f"{'≥' if self.higher_is_better else '≤'} {number}"

    def met(self, value: float | None) -> str:
        if self.goal is None or value is None:
            return ""
        return "yes" if (value >= self.goal if self.higher_is_better else value <= self.goal) else "no"


ROWS = [
    Row("cold", "new environment p50, ms (pre-built pool on)", "p50", goal=10),
    Row("cold", "new environment p99, ms (pre-built pool on)", "p99"),
    Row("cold", "new environment p50, ms (--prebuilt 0)", "on_demand.p50", "p50", goal=10),
    Row("cold", "new environment p99, ms (--prebuilt 0)", "on_demand.p99", "p99"),
    Row("snapstart", "SnapStart new environment p50, ms (1 s init)", "p50", goal=5),
    Row("snapstart", "SnapStart new environment p99, ms (1 s init)", "p99"),
    Row("warm", "warm round trip p50, ms", "p50", goal=0.7),
    Row("warm", "warm round trip p99, ms", "p99", goal=3),
    Row("throughput", "throughput, invokes/s", "invokes_per_s", goal=3000, higher_is_better=True),
    Row("throughput", "latency under load p50, ms", "latency_p50_ms"),
    Row("throughput", "latency under load p99, ms", "latency_p99_ms"),
    Row("idle", "idle warm environment, MB (PSS)", "mb_per_environment"),
    Row("idle", "idle warm 128 MB environments in 24 GB", "environments_in_24gb", goal=1000, higher_is_better=True),
    Row("server", "server, no environments, MB (PSS)", "pss_mb", goal=50),
    Row("server", "server, no environments, MB (RSS)", "rss_mb"),
]


def fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def lookup(figures: dict[str, Any] | None, path: str) -> float | None:
    node: Any = figures
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, int | float) else None


def rows(results: Results, systems: list[str]) -> list[dict[str, Any]]:
    """The table as data: for each row present in `results`, each system's figure and its ratio to lambdastack's."""
    own, peers = systems[0], systems[1:]
    out = []
    for row in ROWS:
        if row.workload not in results:
            continue
        by_system = results[row.workload]
        mine = lookup(by_system.get(own), row.key)
        entry: dict[str, Any] = {"workload": row.workload, "label": row.label, "goal": row.goal_text(),
                                 "met": row.met(mine), own: mine, "range": spread(by_system.get(own), row.key)}
        for peer in peers:
            theirs = lookup(by_system.get(peer), row.peer_key or row.key)
            entry[peer] = theirs
            entry[f"{own}/{peer}"] = mine / theirs if mine is not None and theirs else None
        out.append(entry)
    return out


def spread(figures: dict[str, Any] | None, path: str) -> tuple[float, float] | None:
    """The lowest and highest figure over the rounds that were measured, when there were several."""
    values = [v for r in (figures or {}).get("rounds", []) if (v := lookup(r, path)) is not None]
    return (min(values), max(values)) if len(values) > 1 else None


def markdown(table: list[dict[str, Any]], systems: list[str]) -> str:
    own, peers = systems[0], systems[1:]
    ranges = any(entry["range"] for entry in table)
    header = ["workload", "goal", own, *([f"{own} range"] if ranges else []), "met", *peers]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    for entry in table:
        low_high = f"{fmt(entry['range'][0])}-{fmt(entry['range'][1])}" if entry["range"] else ""
        cells = [entry["label"], entry["goal"], _cell(entry[own]), *([low_high] if ranges else []), entry["met"]]
        for peer in peers:
            value, ratio = entry[peer], entry[f"{own}/{peer}"]
            cells.append(_cell(value) + (f" ({ratio:.2f}x)" if ratio is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "—" if value is None else fmt(value)
