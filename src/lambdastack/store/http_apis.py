"""Where HTTP APIs are kept: an API's own document, and its parts' (integrations, routes, stages).

Documents are stored as the apigatewayv2 API shows them (member names of its output shapes),
so reading one back is reading it out. The embedded implementation keeps them in the metadata
database (tables `http_apis` and `http_api_parts`); a part goes with its API.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from lambdastack.store.connections import ThreadConnections

Document = dict[str, Any]
PartKind = Literal["integration", "route", "stage"]


@dataclass
class Part:
    kind: PartKind
    part_id: str
    document: Document


class ApiGone(Exception):
    """The API was deleted while one of its parts was being written."""


class HttpApiStore(Protocol):
    def create(self, account: str, region: str, api_id: str, document: Document, parts: list[Part]) -> None:
        """The API and its first parts (quick create), in one transaction."""
        ...

    def get(self, api_id: str) -> tuple[str, str, Document] | None:
        """(account, region, document)."""
        ...

    def apis(self, account: str, region: str) -> list[Document]:
        """Oldest first."""
        ...

    def delete(self, api_id: str) -> bool: ...

    def put_part(self, api_id: str, part: Part) -> None:
        """Insert or replace; raises ApiGone."""
        ...

    def parts(self, api_id: str, kind: PartKind) -> list[Document]:
        """Oldest first."""
        ...

    def part(self, api_id: str, kind: PartKind, part_id: str) -> Document | None: ...

    def delete_part(self, api_id: str, kind: PartKind, part_id: str) -> bool: ...

    def close(self) -> None: ...


class SqliteHttpApiStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def create(self, account: str, region: str, api_id: str, document: Document, parts: list[Part]) -> None:
        conn = self._conn()
        with _transaction(conn):
            conn.execute(
                "INSERT INTO http_apis (api_id, account, region, document, created) VALUES (?, ?, ?, ?, ?)",
                (api_id, account, region, orjson.dumps(document).decode(), _now_key(conn)),
            )
            for part in parts:
                self._insert_part(conn, api_id, part)

    def get(self, api_id: str) -> tuple[str, str, Document] | None:
        row = self._conn().execute(
            "SELECT account, region, document FROM http_apis WHERE api_id = ?", (api_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], orjson.loads(row[2]))

    def apis(self, account: str, region: str) -> list[Document]:
        rows = self._conn().execute(
            "SELECT document FROM http_apis WHERE account = ? AND region = ? ORDER BY created, api_id",
            (account, region),
        ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def delete(self, api_id: str) -> bool:
        return self._conn().execute("DELETE FROM http_apis WHERE api_id = ?", (api_id,)).rowcount > 0

    def put_part(self, api_id: str, part: Part) -> None:
        conn = self._conn()
        try:
            self._insert_part(conn, api_id, part)
        except sqlite3.IntegrityError as e:
            raise ApiGone(str(e))

    def parts(self, api_id: str, kind: PartKind) -> list[Document]:
        rows = self._conn().execute(
            "SELECT document FROM http_api_parts WHERE api_id = ? AND kind = ? ORDER BY created, part_id",
            (api_id, kind),
        ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def part(self, api_id: str, kind: PartKind, part_id: str) -> Document | None:
        row = self._conn().execute(
            "SELECT document FROM http_api_parts WHERE api_id = ? AND kind = ? AND part_id = ?",
            (api_id, kind, part_id),
        ).fetchone()
        return None if row is None else orjson.loads(row[0])

    def delete_part(self, api_id: str, kind: PartKind, part_id: str) -> bool:
        return self._conn().execute(
            "DELETE FROM http_api_parts WHERE api_id = ? AND kind = ? AND part_id = ?", (api_id, kind, part_id)
        ).rowcount > 0

    def close(self) -> None:
        self._connections.close()

    @staticmethod
    def _insert_part(conn: sqlite3.Connection, api_id: str, part: Part) -> None:
        # Replacing keeps the part's place (its `created` key) in listings.
        conn.execute(
            "INSERT INTO http_api_parts (api_id, kind, part_id, document, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (api_id, kind, part_id) DO UPDATE SET document = excluded.document",
            (api_id, part.kind, part.part_id, orjson.dumps(part.document).decode(), _now_key(conn)),
        )


def _now_key(conn: sqlite3.Connection) -> str:
    """A sortable creation key: nanoseconds since the epoch, zero-padded."""
    return f"{time.time_ns():020d}"


class _transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
