"""Where Function URL configurations are kept: one per function or alias, found by URL id too.

The embedded implementation keeps them in the metadata database (table `function_urls`,
created by the store's migrations) with foreign keys that drop a URL with its function and
with its alias.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from lambdastack.store.connections import ThreadConnections

_COLUMNS = "account, region, name, qualifier, url_id, auth_type, invoke_mode, cors, created, modified"


@dataclass
class FunctionUrlRecord:
    account: str
    region: str
    function_name: str
    qualifier: str  # an alias name, or "" for the function itself
    url_id: str
    auth_type: str  # NONE | AWS_IAM
    invoke_mode: str  # BUFFERED | RESPONSE_STREAM
    cors: dict[str, Any] | None
    created: str  # ISO 8601, as Lambda shows it
    modified: str


class UrlConflict(Exception):
    """The function (or alias) has a URL already."""


class TargetGone(Exception):
    """The function or alias was deleted while its URL was being written."""


class FunctionUrlStore(Protocol):
    def insert(self, record: FunctionUrlRecord) -> None:
        """Raises UrlConflict or TargetGone."""
        ...

    def update(self, record: FunctionUrlRecord) -> None: ...

    def get(self, account: str, region: str, name: str, qualifier: str) -> FunctionUrlRecord | None: ...

    def by_url_id(self, url_id: str) -> FunctionUrlRecord | None: ...

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool: ...

    def list(self, account: str, region: str, name: str) -> list[FunctionUrlRecord]:
        """Ordered by qualifier (the function's own first)."""
        ...

    def close(self) -> None: ...


class SqliteFunctionUrlStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def insert(self, record: FunctionUrlRecord) -> None:
        try:
            self._conn().execute(
                f"INSERT INTO function_urls ({_COLUMNS}, alias) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_values(record), record.qualifier or None),
            )
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise UrlConflict(str(e))
            raise TargetGone(str(e))

    def update(self, record: FunctionUrlRecord) -> None:
        self._conn().execute(
            "UPDATE function_urls SET auth_type = ?, invoke_mode = ?, cors = ?, modified = ?"
            " WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (record.auth_type, record.invoke_mode, _cors(record.cors), record.modified,
             record.account, record.region, record.function_name, record.qualifier),
        )

    def get(self, account: str, region: str, name: str, qualifier: str) -> FunctionUrlRecord | None:
        row = self._conn().execute(
            f"SELECT {_COLUMNS} FROM function_urls WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (account, region, name, qualifier),
        ).fetchone()
        return _record(row) if row else None

    def by_url_id(self, url_id: str) -> FunctionUrlRecord | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM function_urls WHERE url_id = ?", (url_id,)).fetchone()
        return _record(row) if row else None

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool:
        cursor = self._conn().execute(
            "DELETE FROM function_urls WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (account, region, name, qualifier),
        )
        return cursor.rowcount > 0

    def list(self, account: str, region: str, name: str) -> list[FunctionUrlRecord]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM function_urls WHERE account = ? AND region = ? AND name = ? ORDER BY qualifier",
            (account, region, name),
        ).fetchall()
        return [_record(row) for row in rows]

    def close(self) -> None:
        self._connections.close()


def _cors(cors: dict[str, Any] | None) -> str | None:
    return orjson.dumps(cors).decode() if cors is not None else None


def _values(record: FunctionUrlRecord) -> tuple[Any, ...]:
    return (record.account, record.region, record.function_name, record.qualifier, record.url_id,
            record.auth_type, record.invoke_mode, _cors(record.cors), record.created, record.modified)


def _record(row: tuple[Any, ...]) -> FunctionUrlRecord:
    return FunctionUrlRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                             orjson.loads(row[7]) if row[7] is not None else None, row[8], row[9])
