"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order, exactly once.

The schema version lives in SQLite's `PRAGMA user_version`; each migration and the bump
of that number commit in one transaction, so a crash mid-migration leaves the previous
version intact.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def discover(package: str = "lambdastack.store", folder: str = "migrations") -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files(package).joinpath(folder).iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.number)
    numbers = [mig.number for mig in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"schema migrations must be numbered 0001, 0002, ... without gaps; found {numbers}")
    return found


def apply_sqlite(conn: sqlite3.Connection, migrations: list[Migration]) -> int:
    """Apply the migrations newer than the database; return the resulting schema version."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if migrations and current > migrations[-1].number:
        raise RuntimeError(
            f"the database schema (version {current}) is newer than this lambdastack "
            f"(which knows up to {migrations[-1].number}); upgrade lambdastack"
        )
    for mig in migrations:
        if mig.number <= current:
            continue
        try:
            # executescript() commits whatever is pending and then runs the script verbatim,
            # so the BEGIN/COMMIT below bracket the migration and its version bump.
            conn.executescript(f"BEGIN IMMEDIATE;\n{mig.sql}\n;PRAGMA user_version = {mig.number};\nCOMMIT;")
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = mig.number
    return current
