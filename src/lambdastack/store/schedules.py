"""Where EventBridge Scheduler schedules are kept: one document per schedule, and when it last fired."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class ScheduleRecord:
    account: str
    region: str
    name: str
    document: dict[str, Any]  # GetSchedule's members
    created: float
    last_fired: float | None = None


class ScheduleExists(Exception):
    """A schedule of that name is there already."""


class SqliteScheduleStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def insert(self, record: ScheduleRecord) -> None:
        try:
            self._conn().execute(
                "INSERT INTO schedules (account, region, name, document, created) VALUES (?, ?, ?, ?, ?)",
                (record.account, record.region, record.name, orjson.dumps(record.document).decode(), record.created))
        except sqlite3.IntegrityError as e:
            raise ScheduleExists(str(e))

    def replace(self, record: ScheduleRecord) -> bool:
        """A new document (and a fresh start for its firings); False if the schedule is gone."""
        cursor = self._conn().execute(
            "UPDATE schedules SET document = ?, created = ?, last_fired = NULL"
            " WHERE account = ? AND region = ? AND name = ?",
            (orjson.dumps(record.document).decode(), record.created, record.account, record.region, record.name))
        return cursor.rowcount > 0

    def get(self, account: str, region: str, name: str) -> ScheduleRecord | None:
        row = self._conn().execute(
            "SELECT account, region, name, document, created, last_fired FROM schedules"
            " WHERE account = ? AND region = ? AND name = ?", (account, region, name)).fetchone()
        return None if row is None else _record(row)

    def delete(self, account: str, region: str, name: str) -> bool:
        return self._conn().execute("DELETE FROM schedules WHERE account = ? AND region = ? AND name = ?",
                                    (account, region, name)).rowcount > 0

    def all(self, account: str | None = None, region: str | None = None) -> list[ScheduleRecord]:
        query = "SELECT account, region, name, document, created, last_fired FROM schedules"
        args: tuple[str, ...] = ()
        if account is not None and region is not None:
            query += " WHERE account = ? AND region = ?"
            args = (account, region)
        return [_record(row) for row in self._conn().execute(query + " ORDER BY name", args).fetchall()]

    def fired(self, account: str, region: str, name: str, at: float) -> None:
        self._conn().execute("UPDATE schedules SET last_fired = ? WHERE account = ? AND region = ? AND name = ?",
                             (at, account, region, name))

    def close(self) -> None:
        self._connections.close()


def _record(row: tuple[Any, ...]) -> ScheduleRecord:
    return ScheduleRecord(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5])
