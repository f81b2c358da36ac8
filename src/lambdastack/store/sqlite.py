"""The embedded store: SQLite in WAL mode with `synchronous=FULL`.

A transaction that returned has reached the disk, so an acknowledged change survives a
kill -9 or a power cut; one that did not commit leaves nothing behind. Each thread gets
its own connection: the control plane writes from its own thread while the engine reads
from others, and WAL lets those readers proceed while a write is in progress.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from lambdastack.store.migrate import apply_sqlite, discover
from lambdastack.store.records import LATEST, AliasRecord, FunctionRecord, VersionRecord
from lambdastack.store.sqlite_deployments import SqliteDeployments
from lambdastack.store.sqlite_layers import SqliteLayers, referenced_layer_code
from lambdastack.store.sqlite_provisioned import SqliteProvisioned

_BUSY_TIMEOUT_MS = 30_000


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def migrate(self) -> None:
        apply_sqlite(self._conn(), discover())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # created in another thread that is gone; the OS closes it
            self._connections.clear()

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTransaction(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[SqliteTransaction]:
        conn = self._conn()
        conn.execute("BEGIN DEFERRED")
        try:
            yield SqliteTransaction(conn, readonly=True)
        finally:
            conn.execute("ROLLBACK")

    # -- plain reads (thread-safe) -----------------------------------------------------

    def get_function(self, account: str, region: str, name: str) -> FunctionRecord | None:
        return SqliteTransaction(self._conn(), readonly=True).get_function(account, region, name)

    def get_version(self, account: str, region: str, name: str, version: str) -> VersionRecord | None:
        return SqliteTransaction(self._conn(), readonly=True).get_version(account, region, name, version)

    def get_alias(self, account: str, region: str, name: str, alias: str) -> AliasRecord | None:
        return SqliteTransaction(self._conn(), readonly=True).get_alias(account, region, name, alias)

    def referenced_code(self) -> set[str]:
        conn = self._conn()
        rows = conn.execute("SELECT DISTINCT code_sha256 FROM versions").fetchall()
        return {row[0] for row in rows} | referenced_layer_code(conn)

    def pending_versions(self) -> list[VersionRecord]:
        rows = self._conn().execute(
            "SELECT * FROM versions WHERE json_extract(config, '$.State') = 'Pending'"
            " ORDER BY account, region, name, number"
        ).fetchall()
        return [_version(r) for r in rows]


def _number(version: str) -> int:
    return 0 if version == LATEST else int(version)


def _function(row: sqlite3.Row) -> FunctionRecord:
    return FunctionRecord(
        account=row["account"],
        region=row["region"],
        name=row["name"],
        created=row["created"],
        last_version=row["last_version"],
        reserved_concurrency=row["reserved_concurrency"],
        tags=orjson.loads(row["tags"]),
    )


def _version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        account=row["account"],
        region=row["region"],
        function_name=row["name"],
        version=row["version"],
        config=orjson.loads(row["config"]),
        code_sha256_hex=row["code_sha256"],
        fingerprint=row["fingerprint"],
    )


def _alias(row: sqlite3.Row) -> AliasRecord:
    return AliasRecord(
        account=row["account"],
        region=row["region"],
        function_name=row["name"],
        name=row["alias"],
        function_version=row["function_version"],
        description=row["description"],
        weights=orjson.loads(row["weights"]),
        revision_id=row["revision_id"],
    )


class SqliteTransaction(SqliteLayers, SqliteDeployments, SqliteProvisioned):
    def __init__(self, conn: sqlite3.Connection, readonly: bool = False) -> None:
        self._conn = conn
        self._readonly = readonly

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        if self._readonly:
            raise RuntimeError("write inside a read-only transaction")
        self._conn.execute(sql, args)

    # -- reads ---------------------------------------------------------------------------

    def get_function(self, account: str, region: str, name: str) -> FunctionRecord | None:
        row = self._conn.execute(
            "SELECT * FROM functions WHERE account = ? AND region = ? AND name = ?", (account, region, name)
        ).fetchone()
        return _function(row) if row else None

    def get_version(self, account: str, region: str, name: str, version: str) -> VersionRecord | None:
        if version != LATEST and not version.isdigit():
            return None
        row = self._conn.execute(
            "SELECT * FROM versions WHERE account = ? AND region = ? AND name = ? AND number = ?",
            (account, region, name, _number(version)),
        ).fetchone()
        return _version(row) if row else None

    def get_alias(self, account: str, region: str, name: str, alias: str) -> AliasRecord | None:
        row = self._conn.execute(
            "SELECT * FROM aliases WHERE account = ? AND region = ? AND name = ? AND alias = ?",
            (account, region, name, alias),
        ).fetchone()
        return _alias(row) if row else None

    def list_functions(
        self, account: str, region: str, *, all_versions: bool, after: tuple[str, int] | None, limit: int
    ) -> list[VersionRecord]:
        after_name, after_number = after if after is not None else ("", -1)
        rows = self._conn.execute(
            "SELECT * FROM versions WHERE account = ? AND region = ? AND (? OR number = 0)"
            " AND (name > ? OR (name = ? AND number > ?))"
            " ORDER BY name, number LIMIT ?",
            (account, region, all_versions, after_name, after_name, after_number, limit),
        ).fetchall()
        return [_version(r) for r in rows]

    def list_versions(
        self, account: str, region: str, name: str, *, after: int | None = None, limit: int | None = None
    ) -> list[VersionRecord]:
        rows = self._conn.execute(
            "SELECT * FROM versions WHERE account = ? AND region = ? AND name = ? AND number > ?"
            " ORDER BY number LIMIT ?",
            (account, region, name, -1 if after is None else after, -1 if limit is None else limit),
        ).fetchall()
        return [_version(r) for r in rows]

    def list_aliases(
        self,
        account: str,
        region: str,
        name: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[AliasRecord]:
        rows = self._conn.execute(
            "SELECT * FROM aliases WHERE account = ? AND region = ? AND name = ? AND alias > ? ORDER BY alias LIMIT ?",
            (account, region, name, after or "", -1 if limit is None else limit),
        ).fetchall()
        return [_alias(r) for r in rows]

    def function_count(self, account: str, region: str) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM functions WHERE account = ? AND region = ?", (account, region)
        ).fetchone()
        return int(row[0])

    def total_code_size(self, account: str, region: str) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(json_extract(config, '$.CodeSize')), 0) FROM versions"
            " WHERE account = ? AND region = ?",
            (account, region),
        ).fetchone()
        return int(row[0])

    def reserved_concurrency_total(self, account: str, region: str, *, excluding: str | None = None) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions"
            " WHERE account = ? AND region = ? AND name IS NOT ?",
            (account, region, excluding),
        ).fetchone()
        return int(row[0])

    def code_in_use(self, sha256_hex: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM versions WHERE code_sha256 = ? LIMIT 1", (sha256_hex,)).fetchone()
        return row is not None or self.layer_code_in_use(sha256_hex)

    # -- writes --------------------------------------------------------------------------

    def put_function(self, record: FunctionRecord) -> None:
        self._write(
            "INSERT INTO functions (account, region, name, created, last_version, reserved_concurrency, tags)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account, region, name) DO UPDATE SET created = excluded.created,"
            " last_version = excluded.last_version, reserved_concurrency = excluded.reserved_concurrency,"
            " tags = excluded.tags",
            (
                record.account,
                record.region,
                record.name,
                record.created,
                record.last_version,
                record.reserved_concurrency,
                orjson.dumps(record.tags).decode(),
            ),
        )

    def delete_function(self, account: str, region: str, name: str) -> None:
        self._write("DELETE FROM functions WHERE account = ? AND region = ? AND name = ?", (account, region, name))

    def put_version(self, record: VersionRecord) -> None:
        self._write(
            "INSERT INTO versions (account, region, name, number, version, config, code_sha256, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account, region, name, number) DO UPDATE SET config = excluded.config,"
            " code_sha256 = excluded.code_sha256, fingerprint = excluded.fingerprint",
            (
                record.account,
                record.region,
                record.function_name,
                record.number,
                record.version,
                orjson.dumps(record.config).decode(),
                record.code_sha256_hex,
                record.fingerprint,
            ),
        )

    def delete_version(self, account: str, region: str, name: str, version: str) -> None:
        self._write(
            "DELETE FROM versions WHERE account = ? AND region = ? AND name = ? AND number = ?",
            (account, region, name, _number(version)),
        )

    def put_alias(self, record: AliasRecord) -> None:
        self._write(
            "INSERT INTO aliases"
            " (account, region, name, alias, function_version, description, weights, revision_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account, region, name, alias) DO UPDATE SET"
            " function_version = excluded.function_version, description = excluded.description,"
            " weights = excluded.weights, revision_id = excluded.revision_id",
            (
                record.account,
                record.region,
                record.function_name,
                record.name,
                record.function_version,
                record.description,
                orjson.dumps(record.weights).decode(),
                record.revision_id,
            ),
        )

    def delete_alias(self, account: str, region: str, name: str, alias: str) -> None:
        self._write(
            "DELETE FROM aliases WHERE account = ? AND region = ? AND name = ? AND alias = ?",
            (account, region, name, alias),
        )
