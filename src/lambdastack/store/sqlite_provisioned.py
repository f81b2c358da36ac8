"""Provisioned concurrency configurations in the embedded SQLite store (mixed into `SqliteTransaction`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from lambdastack.store.records import ProvisionedConcurrencyRecord


def _record(row: sqlite3.Row) -> ProvisionedConcurrencyRecord:
    return ProvisionedConcurrencyRecord(
        row["account"], row["region"], row["function_name"], row["qualifier"], row["requested"], row["last_modified"]
    )


class SqliteProvisioned:
    _conn: sqlite3.Connection

    _write: Callable[[str, tuple[Any, ...]], None]  # SqliteTransaction's

    def get_provisioned(
        self, account: str, region: str, name: str, qualifier: str
    ) -> ProvisionedConcurrencyRecord | None:
        row = self._conn.execute(
            "SELECT * FROM provisioned_concurrency WHERE account = ? AND region = ? AND function_name = ?"
            " AND qualifier = ?", (account, region, name, qualifier),
        ).fetchone()
        return _record(row) if row else None

    def list_provisioned(
        self, account: str | None = None, region: str | None = None, name: str | None = None
    ) -> list[ProvisionedConcurrencyRecord]:
        """Configurations of one function, or (no arguments) of every function."""
        if name is None:
            rows = self._conn.execute("SELECT * FROM provisioned_concurrency").fetchall()
        else:
            rows = self._conn.execute(
                "SELECT * FROM provisioned_concurrency WHERE account = ? AND region = ? AND function_name = ?"
                " ORDER BY qualifier", (account, region, name),
            ).fetchall()
        return [_record(r) for r in rows]

    def put_provisioned(self, record: ProvisionedConcurrencyRecord) -> None:
        self._write(
            "INSERT INTO provisioned_concurrency (account, region, function_name, qualifier, requested, last_modified)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, function_name, qualifier) DO UPDATE SET"
            " requested = excluded.requested, last_modified = excluded.last_modified",
            (record.account, record.region, record.function_name, record.qualifier, record.requested,
             record.last_modified),
        )

    def delete_provisioned(self, account: str, region: str, name: str, qualifier: str) -> None:
        self._write(
            "DELETE FROM provisioned_concurrency WHERE account = ? AND region = ? AND function_name = ?"
            " AND qualifier = ?",
            (account, region, name, qualifier),
        )
