"""Where EventBridge rules are kept: each rule's document (as DescribeRule shows it), its targets
(as ListTargetsByRule shows them), and, for a scheduled rule, the last time it fired."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lambdastack.store.connections import ThreadConnections


@dataclass
class RuleRecord:
    account: str
    region: str
    name: str
    document: dict[str, Any]
    created: float
    last_fired: float | None = None


class SqliteRuleStore:
    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._conn = self._connections.get

    def put(self, record: RuleRecord) -> None:
        self._conn().execute(
            "INSERT INTO rules (account, region, name, document, created, last_fired) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account, region, name) DO UPDATE SET document = excluded.document",
            (record.account, record.region, record.name, orjson.dumps(record.document).decode(), record.created,
             record.last_fired),
        )

    def get(self, account: str, region: str, name: str) -> RuleRecord | None:
        row = self._conn().execute(
            "SELECT account, region, name, document, created, last_fired FROM rules "
            "WHERE account = ? AND region = ? AND name = ?", (account, region, name)).fetchone()
        return None if row is None else _rule(row)

    def rules(self, account: str | None = None, region: str | None = None) -> list[RuleRecord]:
        query = "SELECT account, region, name, document, created, last_fired FROM rules"
        args: tuple[str, ...] = ()
        if account is not None and region is not None:
            query += " WHERE account = ? AND region = ?"
            args = (account, region)
        return [_rule(row) for row in self._conn().execute(query + " ORDER BY name", args).fetchall()]

    def delete(self, account: str, region: str, name: str) -> bool:
        return self._conn().execute("DELETE FROM rules WHERE account = ? AND region = ? AND name = ?",
                                    (account, region, name)).rowcount > 0

    def fired(self, account: str, region: str, name: str, at: float) -> None:
        self._conn().execute("UPDATE rules SET last_fired = ? WHERE account = ? AND region = ? AND name = ?",
                             (at, account, region, name))

    def put_target(self, account: str, region: str, rule: str, target: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO rule_targets (account, region, rule, target_id, document) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (account, region, rule, target_id) DO UPDATE SET document = excluded.document",
            (account, region, rule, target["Id"], orjson.dumps(target).decode()))

    def targets(self, account: str, region: str, rule: str) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT document FROM rule_targets WHERE account = ? AND region = ? AND rule = ? ORDER BY target_id",
            (account, region, rule)).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def delete_target(self, account: str, region: str, rule: str, target_id: str) -> bool:
        return self._conn().execute(
            "DELETE FROM rule_targets WHERE account = ? AND region = ? AND rule = ? AND target_id = ?",
            (account, region, rule, target_id)).rowcount > 0

    def close(self) -> None:
        self._connections.close()


def _rule(row: tuple[Any, ...]) -> RuleRecord:
    return RuleRecord(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5])
