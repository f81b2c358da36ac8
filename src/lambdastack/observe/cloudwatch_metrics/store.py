"""Metric series and their data points, on disk (SQLite in the data directory).

Each series (account, region, namespace, metric name, dimensions) has points at two
resolutions: one second, kept for the last hour, and one minute, kept for 15 days, as
CloudWatch keeps high-resolution and standard data. A point holds the count, sum, minimum,
maximum and histogram of its values (see aggregate.py).

The size is bounded twice: at most `max_series` series (new ones beyond are not recorded,
and a warning says so), and at most `max_bytes` of pages in use (the oldest minutes are
deleted first when a flush passes it). With the defaults (5,000 series, 256 MB) the file
stays under about 300 MB; one busy function makes about 40 series.

Facts are drained from the recorder by `flush` (every few seconds, and before each query),
on one thread of its own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from lambdastack.observe.cloudwatch_metrics import recorder as facts
from lambdastack.observe.cloudwatch_metrics.aggregate import Aggregate
from lambdastack.observe.cloudwatch_metrics.recorder import MetricsRecorder

log = logging.getLogger("lambdastack.metrics")

Dimensions = tuple[tuple[str, str], ...]  # sorted by name
SeriesKey = tuple[str, str, str, str, Dimensions]  # account, region, namespace, metric, dimensions
LAMBDA = "AWS/Lambda"
SECOND_RETENTION_S = 3600
MINUTE_RETENTION_S = 15 * 86400
MAX_SERIES = 5000
MAX_BYTES = 256 << 20
PRUNE_EVERY_S = 60.0

# Prometheus' histogram buckets for durations, in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    900.0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, namespace TEXT NOT NULL,
    name TEXT NOT NULL, dimensions TEXT NOT NULL, unit TEXT NOT NULL, last_at REAL NOT NULL,
    UNIQUE (account, region, namespace, name, dimensions));
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL, resolution INTEGER NOT NULL, at INTEGER NOT NULL,
    count REAL NOT NULL, total REAL NOT NULL, minimum REAL NOT NULL, maximum REAL NOT NULL, histogram TEXT NOT NULL,
    PRIMARY KEY (series, resolution, at)) WITHOUT ROWID;
"""

UNITS = {
    "Invocations": "Count", "Errors": "Count", "Throttles": "Count", "Duration": "Milliseconds",
    "ConcurrentExecutions": "Count", "AsyncEventsReceived": "Count", "AsyncEventAge": "Milliseconds",
    "AsyncEventsDropped": "Count", "DeadLetterErrors": "Count", "DestinationDeliveryFailures": "Count",
    "IteratorAge": "Milliseconds",
}
_EVENT_METRICS = {
    facts.ASYNC_RECEIVED: "AsyncEventsReceived", facts.ASYNC_AGE: "AsyncEventAge",
    facts.ASYNC_DROPPED: "AsyncEventsDropped", facts.DEAD_LETTER_ERROR: "DeadLetterErrors",
    facts.DESTINATION_FAILURE: "DestinationDeliveryFailures", facts.ITERATOR_AGE: "IteratorAge",
}


def _dimension_sets(function: str, resource: str | None, version: str | None) -> list[Dimensions]:
    """Where Lambda publishes a function's metric: the account, the function, the qualified
    resource it was invoked as, and (through an alias) the version that ran."""
    sets: list[Dimensions] = [(), (("FunctionName", function),)]
    if resource is not None:
        sets.append((("FunctionName", function), ("Resource", resource)))
        if version is not None and not resource.endswith(f":{version}"):
            sets.append((("ExecutedVersion", version), ("FunctionName", function), ("Resource", resource)))
    return sets


def _series_keys(source: tuple[Any, ...], name: str) -> list[SeriesKey]:
    if source[0] == "custom":
        _, account, region, namespace, dimensions = source
        return [(account, region, namespace, name, dimensions)]
    _, account, region, function, resource, version = source
    return [(account, region, LAMBDA, name, dims) for dims in _dimension_sets(function, resource, version)]


@dataclass
class Series:
    id: int
    account: str
    region: str
    namespace: str
    name: str
    dimensions: Dimensions
    unit: str
    last_at: float


@dataclass
class VersionTotals:
    """Counters since the server started, for Prometheus: one function version."""

    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    cold_starts: int = 0
    duration_sum_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))


class MetricStore:
    def __init__(self, path: Path, recorder: MetricsRecorder, *, max_series: int = MAX_SERIES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.recorder = recorder
        self.max_series = max_series
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._series: dict[SeriesKey, Series] = {}
        rows = self._db.execute("SELECT id, account, region, namespace, name, dimensions, unit, last_at FROM series")
        for row in rows:
            series = Series(row[0], row[1], row[2], row[3], row[4], _parse_dimensions(row[5]), row[6], row[7])
            self._series[(series.account, series.region, series.namespace, series.name, series.dimensions)] = series
        self.totals: dict[tuple[str, str, str, str], VersionTotals] = {}
        self._pruned_at = 0.0
        self._refused: set[SeriesKey] = set()

    # ------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Drain the recorder's facts into the points on disk.

        Facts are first summed per source and second (one function invoked as one resource
        and version), then each sum is added to every series it belongs to: the work per
        fact stays a few dictionary updates however many dimension sets it is published in.
        """
        with self._lock:
            pending = self.recorder.pending
            sums: dict[tuple[Any, str, str, int], Aggregate] = {}
            while True:
                try:
                    fact = pending.popleft()
                except IndexError:
                    break
                for source, name, unit, at, value in self._values(fact):
                    key = (source, name, unit, int(at))
                    found = sums.get(key)
                    if found is None:
                        found = sums[key] = Aggregate()
                    found.add(value)
            if sums:
                batch: dict[tuple[SeriesKey, str], list[tuple[int, Aggregate]]] = {}
                for (source, name, unit, second), agg in sums.items():
                    for series_key in _series_keys(source, name):
                        batch.setdefault((series_key, unit), []).append((second, agg))
                self._write(batch)
            now = time.time()
            if now - self._pruned_at >= PRUNE_EVERY_S:
                self._prune(now)
                self._pruned_at = now

    def _values(self, fact: tuple[Any, ...]) -> Iterable[tuple[Any, str, str, float, float]]:
        """(source, metric, unit, time, value) of a fact; the source decides the series (see `_series_keys`)."""
        kind, at, account, region = fact[0], fact[1], fact[2], fact[3]
        if kind == facts.CUSTOM:
            namespace, name, dimensions, values, unit = fact[4:]
            source: tuple[Any, ...] = ("custom", account, region, namespace, dimensions)
            for value in values:
                yield source, name, unit, at, float(value)
            return
        function, resource = fact[4], fact[5]
        if kind == facts.INVOCATION:
            version, duration_ms, failed, concurrency, cold = fact[6:]
            self._count(account, region, function, version, duration_ms, failed, cold)
            source = ("lambda", account, region, function, resource, version)
            yield source, "Invocations", "Count", at, 1.0
            yield source, "Errors", "Count", at, 1.0 if failed else 0.0
            yield source, "Duration", "Milliseconds", at, duration_ms
            yield source, "ConcurrentExecutions", "Count", at, float(concurrency)
        elif kind == facts.THROTTLE:
            version = fact[6]
            self.totals.setdefault((account, region, function, version), VersionTotals()).throttles += 1
            yield ("lambda", account, region, function, resource, version), "Throttles", "Count", at, 1.0
        else:
            name = _EVENT_METRICS[kind]
            yield ("lambda", account, region, function, resource, None), name, UNITS[name], at, float(fact[6])

    def _count(self, account: str, region: str, function: str, version: str, duration_ms: float,
               failed: bool, cold: bool) -> None:
        totals = self.totals.get((account, region, function, version))
        if totals is None:
            totals = self.totals[(account, region, function, version)] = VersionTotals()
        totals.invocations += 1
        totals.errors += failed
        totals.cold_starts += cold
        seconds = duration_ms / 1000.0
        totals.duration_sum_s += seconds
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                totals.buckets[i] += 1
                break

    def _write(self, batch: dict[tuple[SeriesKey, str], list[tuple[int, Aggregate]]]) -> None:
        cut = int(time.time()) - SECOND_RETENTION_S
        db = self._db
        db.execute("BEGIN")
        try:
            for (key, unit), sums in batch.items():
                series = self._series_for(key, unit, float(max(second for second, _ in sums)))
                if series is None:
                    continue
                points: dict[tuple[int, int], Aggregate] = {}
                for second, agg in sums:
                    if second >= cut:
                        points.setdefault((1, second), Aggregate()).merge(agg)
                    points.setdefault((60, second // 60 * 60), Aggregate()).merge(agg)
                for (resolution, moment), agg in points.items():
                    row = db.execute("SELECT count, total, minimum, maximum, histogram FROM points "
                                     "WHERE series = ? AND resolution = ? AND at = ?",
                                     (series.id, resolution, moment)).fetchone()
                    if row is not None:
                        agg.merge(Aggregate.from_row(*row))
                    db.execute("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (series.id, resolution, moment, *agg.to_row()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _series_for(self, key: SeriesKey, unit: str, at: float) -> Series | None:
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.max_series:
                if key not in self._refused:
                    self._refused.add(key)
                    log.warning("metric %s/%s %s not recorded: the server keeps at most %d series",
                                key[2], key[3], dict(key[4]), self.max_series)
                return None
            cursor = self._db.execute(
                "INSERT INTO series (account, region, namespace, name, dimensions, unit, last_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (*key[:4], _format_dimensions(key[4]), unit, at))
            assert cursor.lastrowid is not None
            series = self._series[key] = Series(cursor.lastrowid, *key, unit, at)
        elif at > series.last_at:
            series.last_at = at
            self._db.execute("UPDATE series SET last_at = ? WHERE id = ?", (at, series.id))
        return series

    def _prune(self, now: float) -> None:
        db = self._db
        db.execute("DELETE FROM points WHERE resolution = 1 AND at < ?", (int(now - SECOND_RETENTION_S),))
        db.execute("DELETE FROM points WHERE resolution = 60 AND at < ?", (int(now - MINUTE_RETENTION_S),))
        while self._bytes_in_use() > self.max_bytes:
            oldest = db.execute("SELECT MIN(at), MAX(at) FROM points WHERE resolution = 60").fetchone()
            if oldest[0] is None or oldest[0] == oldest[1]:
                break
            cut = oldest[0] + max(60, (oldest[1] - oldest[0]) // 10)
            db.execute("DELETE FROM points WHERE resolution = 60 AND at < ?", (cut,))
        stale = now - MINUTE_RETENTION_S
        gone = [k for k, s in self._series.items() if s.last_at < stale]
        for key in gone:
            db.execute("DELETE FROM series WHERE id = ?", (self._series.pop(key).id,))

    def _bytes_in_use(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    # ------------------------------------------------------------------ reading

    def snapshot_totals(self) -> dict[tuple[str, str, str, str], VersionTotals]:
        """The counters per version after draining what was recorded (a copy: safe to read anywhere)."""
        self.flush()
        with self._lock:
            return {k: VersionTotals(t.invocations, t.errors, t.throttles, t.cold_starts, t.duration_sum_s,
                                     list(t.buckets)) for k, t in self.totals.items()}

    def find(self, account: str, region: str) -> list[Series]:
        """Every series of an account's region (call `flush` first for what was just recorded)."""
        return [s for s in self._series.values() if s.account == account and s.region == region]

    def get(self, account: str, region: str, namespace: str, name: str, dimensions: Dimensions) -> Series | None:
        return self._series.get((account, region, namespace, name, dimensions))

    def points(self, series: Series, resolution: int, start: float, end: float) -> list[tuple[int, Aggregate]]:
        """The series' points at `resolution` (1 or 60 s) in [start, end), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, count, total, minimum, maximum, histogram FROM points WHERE series = ? AND resolution = ? "
                "AND at >= ? AND at < ? ORDER BY at", (series.id, resolution, int(start // 1), _ceil(end))).fetchall()
        return [(row[0], Aggregate.from_row(*row[1:])) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _ceil(value: float) -> int:
    whole = int(value)
    return whole if whole == value else whole + 1


def _format_dimensions(dimensions: Dimensions) -> str:
    return orjson.dumps(dimensions).decode()


def _parse_dimensions(text: str) -> Dimensions:
    return tuple((str(name), str(value)) for name, value in orjson.loads(text))
