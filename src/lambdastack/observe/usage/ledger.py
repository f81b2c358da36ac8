"""What each function version used, per hour: requests, billed milliseconds, provisioned time.

Recording is one dictionary update on the event loop (no I/O): an invocation adds to the
bucket of its hour in memory. A flush, every `FLUSH_SECONDS` from a thread and once more at
shutdown, adds the pending buckets to an SQLite file (`usage.db` in the data directory) in
one transaction and deletes buckets older than the retention, so the file stays bounded
(one row per version, configuration and hour). A `kill -9` loses what was recorded since
the last flush: at most `FLUSH_SECONDS` of usage; a clean stop loses nothing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

FLUSH_SECONDS = 10.0
RETENTION_DAYS = 400  # a little over a year of hourly buckets
HOUR = 3600

# account, region, function name, version, architecture, memory MB, ephemeral storage MB
UsageKey = tuple[str, str, str, str, str, int, int]

_COUNTERS = ("requests", "billed_ms", "init_ms", "provisioned_requests", "provisioned_billed_ms",
             "provisioned_env_ms")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    hour INTEGER NOT NULL,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_name TEXT NOT NULL,
    version TEXT NOT NULL,
    architecture TEXT NOT NULL,
    memory_mb INTEGER NOT NULL,
    ephemeral_mb INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    billed_ms INTEGER NOT NULL DEFAULT 0,
    init_ms INTEGER NOT NULL DEFAULT 0,
    provisioned_requests INTEGER NOT NULL DEFAULT 0,
    provisioned_billed_ms INTEGER NOT NULL DEFAULT 0,
    provisioned_env_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, account, region, function_name, version, architecture, memory_mb, ephemeral_mb)
)
"""


@dataclass
class UsageRow:
    """One version's use in one hour (`hour`: seconds since the epoch at the hour's start).

    `billed_ms` counts invocations on on-demand environments (their billed duration, init
    included as on Lambda); `provisioned_billed_ms` those on provisioned environments, billed at
    the provisioned duration rate; `provisioned_env_ms` is environment-milliseconds of
    provisioned concurrency kept ready. `init_ms` is the part of `billed_ms` that was init.
    """

    hour: int
    account: str
    region: str
    function_name: str
    version: str
    architecture: str
    memory_mb: int
    ephemeral_mb: int
    requests: int = 0
    billed_ms: int = 0
    init_ms: int = 0
    provisioned_requests: int = 0
    provisioned_billed_ms: int = 0
    provisioned_env_ms: int = 0


class UsageLedger:
    def __init__(self, path: Path, retention_days: int = RETENTION_DAYS,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.retention_days = retention_days
        self.clock = clock
        # (hour, key) -> [requests, billed_ms, init_ms, provisioned_requests, provisioned_billed_ms, env_ms]
        self._pending: dict[tuple[int, UsageKey], list[int]] = {}
        self._write_lock = threading.Lock()  # one flush at a time
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _bucket(self, key: UsageKey, now: float | None) -> list[int]:
        hour = int(self.clock() if now is None else now) // HOUR * HOUR
        counters = self._pending.get((hour, key))
        if counters is None:
            counters = self._pending[(hour, key)] = [0, 0, 0, 0, 0, 0]
        return counters

    def record(self, key: UsageKey, billed_ms: int, init_ms: float | None, provisioned: bool,
               now: float | None = None) -> None:
        """One invocation (called on the event loop; no I/O)."""
        counters = self._bucket(key, now)
        if provisioned:
            counters[3] += 1
            counters[4] += billed_ms
        else:
            counters[0] += 1
            counters[1] += billed_ms
            if init_ms is not None:
                counters[2] += -(-int(init_ms * 1000) // 1000)  # whole ms, rounded up as billed
        return None

    def record_provisioned(self, key: UsageKey, environment_ms: int, now: float | None = None) -> None:
        """Provisioned environments kept ready: `environment_ms` = environments x milliseconds."""
        self._bucket(key, now)[5] += environment_ms

    def take(self) -> dict[tuple[int, UsageKey], list[int]]:
        """The pending buckets, handed over for `write` (on the thread that records, so no count
        lands in a bucket already taken)."""
        pending, self._pending = self._pending, {}
        return pending

    def give_back(self, pending: dict[tuple[int, UsageKey], list[int]]) -> None:
        """Buckets a failed write could not store go back to pending (on the recording thread)."""
        for bucket, counters in pending.items():
            mine = self._pending.setdefault(bucket, [0] * len(counters))
            for i, value in enumerate(counters):
                mine[i] += value

    def write(self, pending: dict[tuple[int, UsageKey], list[int]]) -> int:
        """Add taken buckets to the file (from any thread); returns how many were written."""
        if not pending:
            return 0
        rows = [(hour, *key, *counters) for (hour, key), counters in pending.items()]
        oldest = int(self.clock()) - self.retention_days * 86400
        with self._write_lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                f"INSERT INTO usage (hour, account, region, function_name, version, architecture, memory_mb, "
                f"ephemeral_mb, {', '.join(_COUNTERS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in _COUNTERS)}",
                rows,
            )
            db.execute("DELETE FROM usage WHERE hour < ?", (oldest // HOUR * HOUR,))
            db.execute("COMMIT")
        return len(rows)

    def flush(self) -> int:
        """take() and write() at once, for a caller on the recording thread."""
        return self.write(self.take())

    def rows(self, since: float = 0.0, function_name: str | None = None) -> list[UsageRow]:
        """Buckets of hours that end after `since` (the hour holding `since` counts whole)."""
        query = "SELECT * FROM usage WHERE hour > ?"
        args: list[object] = [int(since) - HOUR]
        if function_name:
            query += " AND function_name = ?"
            args.append(function_name)
        with self._connect() as db:
            found = db.execute(query + " ORDER BY hour", args).fetchall()
        return [UsageRow(*row) for row in found]


def read_rows(path: Path, since: float = 0.0, function_name: str | None = None) -> Iterable[UsageRow]:
    """A ledger file's buckets, for a reader without a server (`lambdastack cost --data-dir`)."""
    if not path.exists():
        return []
    return UsageLedger(path).rows(since, function_name)
