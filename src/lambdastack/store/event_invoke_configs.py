"""Where asynchronous invocation settings (EventInvokeConfig) are kept.

One record per function qualifier. The embedded implementation keeps them in the
metadata database (table `event_invoke_configs`, created by the store's migrations), on a
connection of its own, with a foreign key that drops them with their function.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class EventInvokeConfigRecord:
    account: str
    region: str
    function_name: str
    qualifier: str  # "$LATEST", a version number or an alias name
    # MaximumRetryAttempts, MaximumEventAgeInSeconds, DestinationConfig, as Lambda names them;
    # members the user never set are absent.
    config: dict[str, Any] = field(default_factory=dict)
    last_modified: float = 0.0


class EventInvokeConfigStore(Protocol):
    def get(self, account: str, region: str, name: str, qualifier: str) -> EventInvokeConfigRecord | None: ...

    def put(self, record: EventInvokeConfigRecord) -> None:
        """Insert or replace; fails (`FunctionGone`) if the function no longer exists."""
        ...

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool: ...

    def list(self, account: str, region: str, name: str) -> list[EventInvokeConfigRecord]:
        """Ordered by qualifier."""
        ...

    def close(self) -> None: ...


class FunctionGone(Exception):
    """The function was deleted while its settings were being written."""


class SqliteEventInvokeConfigStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def get(self, account: str, region: str, name: str, qualifier: str) -> EventInvokeConfigRecord | None:
        row = self._conn().execute(
            "SELECT qualifier, config, last_modified FROM event_invoke_configs"
            " WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (account, region, name, qualifier),
        ).fetchone()
        return _record(account, region, name, row) if row else None

    def put(self, record: EventInvokeConfigRecord) -> None:
        try:
            self._conn().execute(
                "INSERT INTO event_invoke_configs (account, region, name, qualifier, config, last_modified)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, name, qualifier) DO UPDATE SET"
                " config = excluded.config, last_modified = excluded.last_modified",
                (record.account, record.region, record.function_name, record.qualifier,
                 orjson.dumps(record.config).decode(), record.last_modified),
            )
        except sqlite3.IntegrityError as e:
            raise FunctionGone(str(e))

    def delete(self, account: str, region: str, name: str, qualifier: str) -> bool:
        cursor = self._conn().execute(
            "DELETE FROM event_invoke_configs WHERE account = ? AND region = ? AND name = ? AND qualifier = ?",
            (account, region, name, qualifier),
        )
        return cursor.rowcount > 0

    def list(self, account: str, region: str, name: str) -> list[EventInvokeConfigRecord]:
        rows = self._conn().execute(
            "SELECT qualifier, config, last_modified FROM event_invoke_configs"
            " WHERE account = ? AND region = ? AND name = ? ORDER BY qualifier",
            (account, region, name),
        ).fetchall()
        return [_record(account, region, name, row) for row in rows]

    def close(self) -> None:
        self._connections.close()


def _record(account: str, region: str, name: str, row: tuple[Any, ...]) -> EventInvokeConfigRecord:
    return EventInvokeConfigRecord(account, region, name, row[0], orjson.loads(row[1]), float(row[2]))
