"""Where functions' resource-based policies are kept: the statements of one function qualifier."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class PolicyRecord:
    account: str
    region: str
    function_name: str
    qualifier: str  # "" for the function itself, a version or an alias
    statements: list[dict[str, Any]] = field(default_factory=list)  # as GetPolicy shows them
    revision_id: str = ""


class TargetGone(Exception):
    """The function or alias was deleted while its policy was being written."""


class PolicyStore(Protocol):
    def get(self, account: str, region: str, name: str, qualifier: str) -> PolicyRecord | None: ...

    def put(self, record: PolicyRecord, alias: str | None) -> None:
        """Replace the qualifier's statements (none: remove its policy). Raises TargetGone."""
        ...

    def close(self) -> None: ...


class SqlitePolicyStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def get(self, account: str, region: str, name: str, qualifier: str) -> PolicyRecord | None:
        row = self._conn().execute(
            "SELECT statements, revision_id FROM function_policies"
            " WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (account, region, name, qualifier),
        ).fetchone()
        return PolicyRecord(account, region, name, qualifier, orjson.loads(row[0]), row[1]) if row else None

    def put(self, record: PolicyRecord, alias: str | None) -> None:
        key = (record.account, record.region, record.function_name, record.qualifier)
        conn = self._conn()
        if not record.statements:
            conn.execute("DELETE FROM function_policies WHERE account = ? AND region = ? AND name = ?"
                         " AND qualifier = ?", key)
            return
        try:
            conn.execute(
                "INSERT INTO function_policies (account, region, name, qualifier, alias, statements, revision_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, name, qualifier) DO UPDATE SET"
                " statements = excluded.statements, revision_id = excluded.revision_id",
                (*key, alias, orjson.dumps(record.statements).decode(), record.revision_id),
            )
        except sqlite3.IntegrityError as e:
            raise TargetGone(str(e))

    def close(self) -> None:
        self._connections.close()
