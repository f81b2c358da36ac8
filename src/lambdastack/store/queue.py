"""The embedded async queue (an `EventQueue`, store/event_queue.py): SQLite, WAL, `synchronous=FULL`.

It has a database file of its own (`queue.db`), apart from the metadata.

Every change (new events, finished events, rescheduled events, counters) goes through one
writer thread, which commits whatever has piled up in one transaction: one fsync for many
events (group commit). A caller's change is acknowledged only after its commit.

Leases are kept in memory. In the embedded deployment this process is the queue's only
consumer, so a lease lives exactly as long as the process that holds it: when the server
dies, its leases die with it and, after a restart, every event is ready again. That is
at-least-once delivery without a write per claim.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdastack.store.event_queue import FunctionKey, FunctionQueueInfo, QueuedEvent

__all__ = ["QueuedEvent", "SqliteEventQueue"]

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
CREATE INDEX IF NOT EXISTS async_events_by_function
    ON async_events (account, region, function_name, available_at, seq);
CREATE TABLE IF NOT EXISTS async_counters (
    account TEXT NOT NULL,
    region TEXT NOT NULL,
    function_name TEXT NOT NULL,
    counter TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (account, region, function_name, counter)
);
"""

_COLUMNS = (
    "seq, request_id, account, region, function_name, qualifier, payload, received_at, available_at, attempts, extra"
)


@dataclass
class _Op:
    kind: str  # put | finish | reschedule | count
    event: QueuedEvent | None
    key: FunctionKey | None
    available_at: float
    counters: Mapping[str, int] | None
    future: asyncio.Future[None] | None


class SqliteEventQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._writer_conn = self._connect()
        self._writer_conn.executescript(SCHEMA)
        self._pending: list[_Op] = []
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        # Leased sequence numbers per function; guarded by `_leases_lock`.
        self._leases: dict[FunctionKey, set[int]] = {}
        self._leases_lock = threading.Lock()
        self._writer = threading.Thread(target=self._write_loop, name="event-queue-writer", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    # ------------------------------------------------------------------ writes

    async def put(self, event: QueuedEvent) -> None:
        if not event.available_at:
            event.available_at = event.received_at
        await self._submit(_Op("put", event, None, event.available_at, None, None))

    async def finish(self, event: QueuedEvent, counters: Mapping[str, int] | None = None) -> None:
        await self._submit(_Op("finish", event, event.key, 0.0, counters, None))

    async def reschedule(
        self, event: QueuedEvent, available_at: float, counters: Mapping[str, int] | None = None
    ) -> None:
        await self._submit(_Op("reschedule", event, event.key, available_at, counters, None))

    async def count(self, key: FunctionKey, counters: Mapping[str, int]) -> None:
        await self._submit(_Op("count", None, key, 0.0, counters, None))

    async def _submit(self, op: _Op) -> None:
        op.future = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the event queue is closed")
            self._pending.append(op)
            self._wake.notify()
        await op.future

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            error: BaseException | None = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._apply(conn, batch)
                conn.execute("COMMIT")
            except BaseException as e:  # the batch fails together; each caller sees the error
                error = e
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            # Leases end only once the change that ends them is on disk (or failed, in which
            # case the event is handed out again: at least once).
            with self._leases_lock:
                for op in batch:
                    if op.kind in ("finish", "reschedule") and op.event is not None and op.key is not None:
                        leased = self._leases.get(op.key)
                        if leased is not None:
                            leased.discard(op.event.seq)
            for op in batch:
                if op.future is not None:
                    op.future.get_loop().call_soon_threadsafe(_settle, op.future, error)

    @staticmethod
    def _apply(conn: sqlite3.Connection, batch: list[_Op]) -> None:
        puts = [op.event for op in batch if op.kind == "put" and op.event is not None]
        if puts:
            conn.executemany(
                "INSERT OR IGNORE INTO async_events (request_id, account, region, function_name, qualifier,"
                " payload, received_at, available_at, attempts, extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(e.request_id, e.account, e.region, e.function_name, e.qualifier, e.payload,
                  e.received_at, e.available_at, e.attempts, e.extra) for e in puts],
            )
        finished = [(op.event.seq,) for op in batch if op.kind == "finish" and op.event is not None]
        if finished:
            conn.executemany("DELETE FROM async_events WHERE seq = ?", finished)
        rescheduled = [
            (op.available_at, op.event.attempts, op.event.extra, op.event.seq)
            for op in batch if op.kind == "reschedule" and op.event is not None
        ]
        if rescheduled:
            conn.executemany(
                "UPDATE async_events SET available_at = ?, attempts = ?, extra = ? WHERE seq = ?", rescheduled
            )
        counts: dict[tuple[str, str, str, str], int] = {}
        for op in batch:
            if op.counters and op.key is not None:
                for name, n in op.counters.items():
                    k = (op.key.account, op.key.region, op.key.name, name)
                    counts[k] = counts.get(k, 0) + n
        if counts:
            conn.executemany(
                "INSERT INTO async_counters (account, region, function_name, counter, value) VALUES (?,?,?,?,?)"
                " ON CONFLICT (account, region, function_name, counter) DO UPDATE SET value = value + excluded.value",
                [(*k, n) for k, n in counts.items()],
            )

    # ------------------------------------------------------------------ consumers

    async def claim(
        self, key: FunctionKey, limit: int, *, now: float, received_before: float | None = None
    ) -> list[QueuedEvent]:
        # A short indexed read on this thread's own connection: WAL readers never wait for the writer.
        # The leases lock is held from before the read until the claimed events are leased: the
        # writer ends a lease only after its commit, so a read that began before that commit (and
        # may still see the finished event) always finds the event leased.
        if limit <= 0:
            return []
        with self._leases_lock:
            return self._claim_locked(key, limit, now, received_before)

    def _claim_locked(
        self, key: FunctionKey, limit: int, now: float, received_before: float | None
    ) -> list[QueuedEvent]:
        mine = self._leases.setdefault(key, set())
        sql = (f"SELECT {_COLUMNS} FROM async_events WHERE account = ? AND region = ? AND function_name = ?"
               " AND available_at <= ?")
        args: list[Any] = [key.account, key.region, key.name, now]
        if received_before is not None:
            sql += " AND received_at <= ?"
            args.append(received_before)
        sql += " ORDER BY available_at, seq LIMIT ?"
        args.append(limit + len(mine))
        claimed: list[QueuedEvent] = []
        for r in self._reader().execute(sql, args).fetchall():
            if len(claimed) >= limit:
                break
            if r[0] in mine:
                continue
            mine.add(r[0])
            claimed.append(QueuedEvent(
                seq=r[0], request_id=r[1], account=r[2], region=r[3], function_name=r[4], qualifier=r[5],
                payload=r[6], received_at=r[7], available_at=r[8], attempts=r[9], extra=r[10],
            ))
        return claimed

    def release(self, events: Sequence[QueuedEvent]) -> None:
        with self._leases_lock:
            for event in events:
                leased = self._leases.get(event.key)
                if leased is not None:
                    leased.discard(event.seq)

    async def release_leases(self) -> None:
        with self._leases_lock:
            self._leases.clear()

    async def functions(self, now: float) -> list[FunctionQueueInfo]:
        return await asyncio.to_thread(self._functions, now)

    def _functions(self, now: float) -> list[FunctionQueueInfo]:
        conn = self._reader()
        infos: dict[FunctionKey, FunctionQueueInfo] = {}
        for account, region, name, depth, ready, oldest, next_at in conn.execute(
            "SELECT account, region, function_name, COUNT(*), SUM(available_at <= ?), MIN(received_at),"
            " MIN(CASE WHEN available_at > ? THEN available_at END) FROM async_events"
            " GROUP BY account, region, function_name",
            (now, now),
        ):
            key = FunctionKey(account, region, name)
            infos[key] = FunctionQueueInfo(key, int(depth), int(ready or 0), oldest, next_at)
        for account, region, name, counter, value in conn.execute(
            "SELECT account, region, function_name, counter, value FROM async_counters"
        ):
            key = FunctionKey(account, region, name)
            info = infos.get(key)
            if info is None:
                info = infos[key] = FunctionQueueInfo(key, 0, 0, None, None)
            info.counters[counter] = int(value)
        return list(infos.values())

    async def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        await asyncio.to_thread(self._writer.join, 10)
        with self._conns_lock:
            for conn in self._conns:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
            self._conns.clear()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
