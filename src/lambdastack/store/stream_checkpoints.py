"""Stream mapping checkpoints: per mapping and shard, the last sequence number done with.

The embedded implementation keeps them in the metadata database (table
`stream_checkpoints`); a checkpoint goes with its mapping.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Protocol

from lambdastack.store.connections import ThreadConnections


class CheckpointStore(Protocol):
    def get(self, uuid: str, shard: str) -> str | None: ...

    def put(self, uuid: str, shard: str, sequence: str) -> None:
        """Record the checkpoint (nothing, if the mapping is gone)."""
        ...

    def close(self) -> None: ...


class SqliteCheckpointStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def get(self, uuid: str, shard: str) -> str | None:
        row = self._conn().execute(
            "SELECT sequence FROM stream_checkpoints WHERE uuid = ? AND shard = ?", (uuid, shard)).fetchone()
        return None if row is None else str(row[0])

    def put(self, uuid: str, shard: str, sequence: str) -> None:
        try:
            self._conn().execute(
                "INSERT INTO stream_checkpoints (uuid, shard, sequence) VALUES (?, ?, ?)"
                " ON CONFLICT (uuid, shard) DO UPDATE SET sequence = excluded.sequence",
                (uuid, shard, sequence),
            )
        except sqlite3.IntegrityError:
            pass  # the mapping was deleted meanwhile: nothing to resume

    def close(self) -> None:
        self._connections.close()
