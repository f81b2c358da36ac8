"""Deployments in the embedded SQLite store (mixed into `SqliteTransaction`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from lambdastack.store.records import DeploymentRecord


def _deployment(row: sqlite3.Row) -> DeploymentRecord:
    return DeploymentRecord(
        id=row["id"],
        account=row["account"],
        region=row["region"],
        function_name=row["function_name"],
        alias=row["alias"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        strategy=orjson.loads(row["strategy"]),
        health_policy=orjson.loads(row["health_policy"]),
        status=row["status"],
        created=row["created"],
        updated=row["updated"],
        reason=row["reason"],
        weight=row["weight"],
        progress=orjson.loads(row["progress"]),
    )


class SqliteDeployments:
    _conn: sqlite3.Connection
    _write: Callable[[str, tuple[Any, ...]], None]  # SqliteTransaction's

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        row = self._conn.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return _deployment(row) if row else None

    def list_deployments(
        self,
        account: str,
        region: str,
        *,
        function_name: str | None = None,
        status: str | None = None,
        before: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[DeploymentRecord]:
        """Newest first; `before` is the (created, id) of the last one of a previous page."""
        created, ident = before if before is not None else (None, None)
        rows = self._conn.execute(
            "SELECT * FROM deployments WHERE account = ? AND region = ? AND (? IS NULL OR function_name = ?)"
            " AND (? IS NULL OR status = ?) AND (? IS NULL OR created < ? OR (created = ? AND id < ?))"
            " ORDER BY created DESC, id DESC LIMIT ?",
            (account, region, function_name, function_name, status, status, created, created, created, ident,
             -1 if limit is None else limit),
        ).fetchall()
        return [_deployment(r) for r in rows]

    def unfinished_deployments(self) -> list[DeploymentRecord]:
        """Every deployment still in progress, in any account and region."""
        rows = self._conn.execute("SELECT * FROM deployments WHERE status = 'InProgress' ORDER BY created").fetchall()
        return [_deployment(r) for r in rows]

    def put_deployment(self, record: DeploymentRecord) -> None:
        self._write(
            "INSERT INTO deployments (id, account, region, function_name, alias, from_version, to_version,"
            " strategy, health_policy, status, reason, weight, created, updated, progress)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, reason = excluded.reason,"
            " weight = excluded.weight, updated = excluded.updated, progress = excluded.progress",
            (
                record.id,
                record.account,
                record.region,
                record.function_name,
                record.alias,
                record.from_version,
                record.to_version,
                orjson.dumps(record.strategy).decode(),
                orjson.dumps(record.health_policy).decode(),
                record.status,
                record.reason,
                record.weight,
                record.created,
                record.updated,
                orjson.dumps(record.progress).decode(),
            ),
        )
