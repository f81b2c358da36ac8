"""Where code signing configurations are kept, and which one each function has."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class CodeSigningConfigRecord:
    account: str
    region: str
    config_id: str  # csc-<17 characters>
    publishers: list[str]  # AllowedPublishers.SigningProfileVersionArns
    policy: str  # CodeSigningPolicies.UntrustedArtifactOnDeployment: Warn | Enforce
    last_modified: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class FunctionGone(Exception):
    """The function was deleted before its code signing configuration could be set."""


_COLUMNS = "account, region, id, publishers, policy, last_modified, description, tags"


def _record(row: tuple[str, ...]) -> CodeSigningConfigRecord:
    return CodeSigningConfigRecord(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5], row[6],
                                   orjson.loads(row[7]))


class SqliteCodeSigningStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    # -- configurations -----------------------------------------------------------------

    def get(self, account: str, region: str, config_id: str) -> CodeSigningConfigRecord | None:
        row = self._conn().execute(
            f"SELECT {_COLUMNS} FROM code_signing_configs WHERE account = ? AND region = ? AND id = ?",
            (account, region, config_id),
        ).fetchone()
        return _record(row) if row else None

    def put(self, record: CodeSigningConfigRecord) -> None:
        self._conn().execute(
            f"INSERT INTO code_signing_configs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account, region, id) DO UPDATE SET publishers = excluded.publishers,"
            " policy = excluded.policy, last_modified = excluded.last_modified,"
            " description = excluded.description, tags = excluded.tags",
            (record.account, record.region, record.config_id, orjson.dumps(record.publishers).decode(),
             record.policy, record.last_modified, record.description, orjson.dumps(record.tags).decode()),
        )

    def delete(self, account: str, region: str, config_id: str) -> None:
        self._conn().execute("DELETE FROM code_signing_configs WHERE account = ? AND region = ? AND id = ?",
                             (account, region, config_id))

    def list_configs(self, account: str, region: str, after: str | None, limit: int) -> list[CodeSigningConfigRecord]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} FROM code_signing_configs WHERE account = ? AND region = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (account, region, after or "", limit),
        ).fetchall()
        return [_record(row) for row in rows]

    # -- functions ----------------------------------------------------------------------

    def function_config(self, account: str, region: str, name: str) -> str | None:
        """The id of the configuration a function has (None: it has none)."""
        row = self._conn().execute(
            "SELECT config_id FROM function_code_signing WHERE account = ? AND region = ? AND name = ?",
            (account, region, name),
        ).fetchone()
        return str(row[0]) if row else None

    def attach(self, account: str, region: str, name: str, config_id: str) -> None:
        try:
            self._conn().execute(
                "INSERT INTO function_code_signing (account, region, name, config_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account, region, name) DO UPDATE SET config_id = excluded.config_id",
                (account, region, name, config_id),
            )
        except sqlite3.IntegrityError as e:
            raise FunctionGone(str(e))

    def detach(self, account: str, region: str, name: str) -> None:
        self._conn().execute("DELETE FROM function_code_signing WHERE account = ? AND region = ? AND name = ?",
                             (account, region, name))

    def functions_using(self, account: str, region: str, config_id: str, after: str | None,
                        limit: int) -> list[str]:
        rows = self._conn().execute(
            "SELECT name FROM function_code_signing WHERE account = ? AND region = ? AND config_id = ?"
            " AND name > ? ORDER BY name LIMIT ?",
            (account, region, config_id, after or "", limit),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        self._connections.close()
