"""The durable queue of asynchronous invocations (embedded: SQLite, its own database file).

An event is committed and fsync'd before `put` returns, so a 202 is never sent for an
event a crash could lose. Concurrent `put`s are committed together (group commit): one
fsync for many events. Consumers `claim` events with a lease; an event whose consumer died
becomes available again when its lease ends, so delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS async_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier TEXT,
    payload BLOB NOT NULL,
    received_at REAL NOT NULL,
    available_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS async_events_ready ON async_events (available_at, lease_until);
"""


@dataclass
class QueuedEvent:
    request_id: str
    account: str
    region: str
    function_name: str
    qualifier: str | None
    payload: bytes
    received_at: float = field(default_factory=time.time)
    available_at: float = 0.0
    attempts: int = 0
    extra: str = "{}"
    seq: int = 0


class SqliteEventQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = self._connect()
        self._conn.executescript(SCHEMA)
        self._pending: list[tuple[QueuedEvent, asyncio.Future[None]]] = []
        self._db_lock = threading.Lock()  # one connection, used by the writer and the consumers
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="event-queue-writer", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    # ------------------------------------------------------------------ writes

    async def put(self, event: QueuedEvent) -> None:
        """Return once the event is on disk."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not event.available_at:
            event.available_at = event.received_at
        with self._wake:
            self._pending.append((event, done))
            self._wake.notify()
        await done

    def _write_loop(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed and not self._pending:
                    return
                batch, self._pending = self._pending, []
            error: BaseException | None = None
            with self._db_lock:
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    self._conn.executemany(
                        "INSERT OR IGNORE INTO async_events (request_id, account, region, function_name, qualifier,"
                        " payload, received_at, available_at, attempts, extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        [(e.request_id, e.account, e.region, e.function_name, e.qualifier, e.payload,
                          e.received_at, e.available_at, e.attempts, e.extra) for e, _ in batch],
                    )
                    self._conn.execute("COMMIT")
                except BaseException as e:  # the batch fails together; each caller sees the error
                    error = e
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
            for _, future in batch:
                loop = future.get_loop()
                loop.call_soon_threadsafe(_settle, future, error)

    # ------------------------------------------------------------------ consumers

    def claim(self, limit: int, lease_s: float, now: float | None = None) -> list[QueuedEvent]:
        """Lease up to `limit` available events (oldest first)."""
        now = time.time() if now is None else now
        with self._db_lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                rows = self._conn.execute(
                    "SELECT seq, request_id, account, region, function_name, qualifier, payload, received_at,"
                    " available_at, attempts, extra FROM async_events WHERE available_at <= ? AND lease_until <= ?"
                    " ORDER BY available_at, seq LIMIT ?",
                    (now, now, limit),
                ).fetchall()
                if rows:
                    self._conn.executemany(
                        "UPDATE async_events SET lease_until = ? WHERE seq = ?", [(now + lease_s, r[0]) for r in rows]
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return [
            QueuedEvent(seq=r[0], request_id=r[1], account=r[2], region=r[3], function_name=r[4], qualifier=r[5],
                        payload=r[6], received_at=r[7], available_at=r[8], attempts=r[9], extra=r[10])
            for r in rows
        ]

    def complete(self, seqs: Sequence[int]) -> None:
        """Forget delivered events."""
        if not seqs:
            return
        with self._db_lock:
            self._conn.executemany("DELETE FROM async_events WHERE seq = ?", [(s,) for s in seqs])

    def retry(self, seq: int, available_at: float, attempts: int, extra: str) -> None:
        """Put a leased event back, to be claimed again at `available_at`."""
        with self._db_lock:
            self._conn.execute(
                "UPDATE async_events SET available_at = ?, lease_until = 0, attempts = ?, extra = ? WHERE seq = ?",
                (available_at, attempts, extra, seq),
            )

    def release_leases(self) -> None:
        """Make every leased event available again (the embedded server starts with no consumers)."""
        with self._db_lock:
            self._conn.execute("UPDATE async_events SET lease_until = 0 WHERE lease_until > 0")

    def next_available_at(self) -> float | None:
        with self._db_lock:
            row = self._conn.execute("SELECT MIN(MAX(available_at, lease_until)) FROM async_events").fetchone()
        return row[0] if row and row[0] is not None else None

    def depth(self) -> int:
        with self._db_lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM async_events").fetchone()[0])

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._writer.join(10)
        self._conn.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
