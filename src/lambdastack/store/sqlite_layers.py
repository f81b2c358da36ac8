"""Layers and their versions in the embedded SQLite store (mixed into `SqliteTransaction`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from lambdastack.store.records import LAYER_SHA256, LayerRecord, LayerVersionRecord

# SHA-256 (hex) of the layer content a function version snapshotted when the layer was
# attached; it keeps that content alive after the layer version itself is deleted.
_SNAPSHOT = f"json_extract(layer.value, '$.{LAYER_SHA256}')"
_SNAPSHOTS = "versions, json_each(versions.config, '$.Layers') AS layer"


def _layer_version(row: sqlite3.Row) -> LayerVersionRecord:
    return LayerVersionRecord(
        account=row["account"],
        region=row["region"],
        layer_name=row["name"],
        version=row["version"],
        created=row["created"],
        code_sha256_hex=row["code_sha256"],
        code_size=row["code_size"],
        unzipped_size=row["unzipped_size"],
        description=row["description"],
        compatible_runtimes=orjson.loads(row["compatible_runtimes"]),
        compatible_architectures=orjson.loads(row["compatible_architectures"]),
        license_info=row["license_info"],
        policy=orjson.loads(row["policy"]),
        policy_revision=row["policy_revision"],
    )


class SqliteLayers:
    _conn: sqlite3.Connection

    _write: Callable[[str, tuple[Any, ...]], None]  # SqliteTransaction's

    def get_layer(self, account: str, region: str, name: str) -> LayerRecord | None:
        row = self._conn.execute(
            "SELECT * FROM layers WHERE account = ? AND region = ? AND name = ?", (account, region, name)
        ).fetchone()
        return LayerRecord(row["account"], row["region"], row["name"], row["last_version"]) if row else None

    def put_layer(self, record: LayerRecord) -> None:
        self._write(
            "INSERT INTO layers (account, region, name, last_version) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (account, region, name) DO UPDATE SET last_version = excluded.last_version",
            (record.account, record.region, record.name, record.last_version),
        )

    def get_layer_version(self, account: str, region: str, name: str, version: int) -> LayerVersionRecord | None:
        row = self._conn.execute(
            "SELECT * FROM layer_versions WHERE account = ? AND region = ? AND name = ? AND version = ?",
            (account, region, name, version),
        ).fetchone()
        return _layer_version(row) if row else None

    def list_layer_versions(self, account: str, region: str, name: str | None = None) -> list[LayerVersionRecord]:
        """Versions of one layer (or of every layer), by layer name, newest version first."""
        rows = self._conn.execute(
            "SELECT * FROM layer_versions WHERE account = ? AND region = ? AND (? IS NULL OR name = ?)"
            " ORDER BY name, version DESC",
            (account, region, name, name),
        ).fetchall()
        return [_layer_version(r) for r in rows]

    def put_layer_version(self, record: LayerVersionRecord) -> None:
        self._write(
            "INSERT INTO layer_versions (account, region, name, version, created, description,"
            " compatible_runtimes, compatible_architectures, license_info, code_sha256, code_size, unzipped_size,"
            " policy, policy_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account, region, name, version) DO UPDATE SET"
            " policy = excluded.policy, policy_revision = excluded.policy_revision",
            (
                record.account,
                record.region,
                record.layer_name,
                record.version,
                record.created,
                record.description,
                orjson.dumps(record.compatible_runtimes).decode(),
                orjson.dumps(record.compatible_architectures).decode(),
                record.license_info,
                record.code_sha256_hex,
                record.code_size,
                record.unzipped_size,
                orjson.dumps(record.policy).decode(),
                record.policy_revision,
            ),
        )

    def delete_layer_version(self, account: str, region: str, name: str, version: int) -> None:
        self._write(
            "DELETE FROM layer_versions WHERE account = ? AND region = ? AND name = ? AND version = ?",
            (account, region, name, version),
        )

    def layer_code_in_use(self, sha256_hex: str) -> bool:
        """Whether a layer version, or a function version's snapshot of one, holds this content."""
        row = self._conn.execute(
            f"SELECT 1 FROM layer_versions WHERE code_sha256 = ?"
            f" UNION ALL SELECT 1 FROM {_SNAPSHOTS} WHERE {_SNAPSHOT} = ? LIMIT 1",
            (sha256_hex, sha256_hex),
        ).fetchone()
        return row is not None


def referenced_layer_code(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(f"SELECT code_sha256 FROM layer_versions UNION SELECT {_SNAPSHOT} FROM {_SNAPSHOTS}").fetchall()
    return {row[0] for row in rows if row[0]}
