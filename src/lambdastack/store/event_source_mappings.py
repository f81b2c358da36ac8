"""Where event source mappings are kept: one document per mapping, found by UUID or by function.

The embedded implementation keeps them in the metadata database (table
`event_source_mappings`), with a foreign key that drops a mapping with its function.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class MappingRecord:
    uuid: str
    account: str
    region: str
    function_name: str
    document: dict[str, Any]  # GetEventSourceMapping's members, and `Qualifier` and `Created`


class FunctionGone(Exception):
    """The function was deleted while its mapping was being written."""


class MappingStore(Protocol):
    def put(self, record: MappingRecord) -> None:
        """Insert or replace; raises FunctionGone."""
        ...

    def get(self, uuid: str) -> MappingRecord | None: ...

    def delete(self, uuid: str) -> bool: ...

    def all(self, account: str | None = None, region: str | None = None) -> list[MappingRecord]:
        """Oldest first."""
        ...

    def close(self) -> None: ...


class SqliteMappingStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def put(self, record: MappingRecord) -> None:
        try:
            self._conn().execute(
                "INSERT INTO event_source_mappings (uuid, account, region, name, document, created) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, "
                "document = excluded.document",
                (record.uuid, record.account, record.region, record.function_name,
                 orjson.dumps(record.document).decode(), f"{time.time_ns():020d}"),
            )
        except sqlite3.IntegrityError as e:
            raise FunctionGone(str(e))

    def get(self, uuid: str) -> MappingRecord | None:
        row = self._conn().execute(
            "SELECT uuid, account, region, name, document FROM event_source_mappings WHERE uuid = ?", (uuid,)
        ).fetchone()
        return None if row is None else _record(row)

    def delete(self, uuid: str) -> bool:
        return self._conn().execute("DELETE FROM event_source_mappings WHERE uuid = ?", (uuid,)).rowcount > 0

    def all(self, account: str | None = None, region: str | None = None) -> list[MappingRecord]:
        query = "SELECT uuid, account, region, name, document FROM event_source_mappings"
        args: tuple[str, ...] = ()
        if account is not None and region is not None:
            query += " WHERE account = ? AND region = ?"
            args = (account, region)
        rows = self._conn().execute(query + " ORDER BY created, uuid", args).fetchall()
        return [_record(row) for row in rows]

    def close(self) -> None:
        self._connections.close()


def _record(row: tuple[Any, ...]) -> MappingRecord:
    return MappingRecord(row[0], row[1], row[2], row[3], orjson.loads(row[4]))
