"""Access keys of the server's APIs: `lambdastack keys create|list|disable|delete`.

Stored in `access-keys.db` (SQLite) in the data directory; each secret is sealed with AES-GCM
under a 256-bit key of its own file, `access-keys.key` (mode 0600, the server's user only),
bound to its access key id (the id is the associated data, so a sealed secret cannot be moved
to another key's row).

Threat model: a copy of the database alone (a backup, a leaked file, another user who can read
the data directory but not the key file) does not reveal any secret. Whoever can read both files
(root, the server's own user) can recover every secret; SigV4 needs the secret itself to check
a signature, so a server must be able to. Secrets are shown once, when a key is created.

A running server sees changes made by the command at once: `KeyStore.find` re-reads the
database whenever its file changed (one `stat` per lookup), so a disabled or deleted key stops
working with the next request.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DB_NAME = "access-keys.db"
KEY_NAME = "access-keys.key"
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_SCHEMA = """CREATE TABLE IF NOT EXISTS access_keys (
    access_key_id TEXT PRIMARY KEY,
    name TEXT,
    account TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    nonce BLOB NOT NULL,
    sealed BLOB NOT NULL
)"""


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    name: str | None
    account: str
    status: str  # Active | Inactive (IAM's words)
    created: float

    def as_json(self) -> dict[str, object]:
        return {"AccessKeyId": self.access_key_id, "UserName": self.name, "Account": self.account,
                "Status": self.status,
                "CreateDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))}


@dataclass(frozen=True)
class Secret:
    secret: str
    key: AccessKey

    @property
    def account(self) -> str:
        return self.key.account

    @property
    def name(self) -> str | None:
        return self.key.name


class KeyStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self._seen: tuple[int, int, int] | None = None
        self._active: dict[str, Secret] = {}
        self._aead: AESGCM | None = None

    # ------------------------------------------------------------------ administration

    def create(self, account: str, name: str | None = None) -> tuple[AccessKey, str]:
        """A new active key and its secret (the only time the secret is shown)."""
        if len(account) != 12 or not account.isdigit():
            raise ValueError("an account is 12 digits")
        access_key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
        nonce = secrets.token_bytes(12)
        sealed = self._cipher().encrypt(nonce, secret.encode(), access_key_id.encode())
        key = AccessKey(access_key_id, name, account, "Active", time.time())
        with self._connect() as db:
            db.execute("INSERT INTO access_keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (access_key_id, name, account, key.status, key.created, nonce, sealed))
        return key, secret

    def list(self) -> list[AccessKey]:
        with self._connect() as db:
            rows = db.execute("SELECT access_key_id, name, account, status, created FROM access_keys "
                              "ORDER BY created").fetchall()
        return [AccessKey(*row) for row in rows]

    def set_status(self, access_key_id: str, status: str) -> bool:
        with self._connect() as db:
            return db.execute("UPDATE access_keys SET status = ? WHERE access_key_id = ?",
                              (status, access_key_id)).rowcount > 0

    def delete(self, access_key_id: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,)).rowcount > 0

    # ------------------------------------------------------------------ the server's lookups

    def find(self, access_key_id: str) -> Secret | None:
        """The active key's secret and account, or None; re-reads the database if it changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._active = None, {}
            return None
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen != self._seen:
            self._active = self._load()
            self._seen = seen
        return self._active.get(access_key_id)

    def _load(self) -> dict[str, Secret]:
        with self._connect() as db:
            rows = db.execute("SELECT access_key_id, name, account, status, created, nonce, sealed "
                              "FROM access_keys WHERE status = 'Active'").fetchall()
        cipher = self._cipher()
        active = {}
        for access_key_id, name, account, status, created, nonce, sealed in rows:
            secret = cipher.decrypt(nonce, sealed, access_key_id.encode()).decode()
            active[access_key_id] = Secret(secret, AccessKey(access_key_id, name, account, status, created))
        return active

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits (or rolls back) and closes at the end of the block."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        db = sqlite3.connect(self.path, timeout=5)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            with db:
                db.execute(_SCHEMA)
                yield db
        finally:
            db.close()

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            path = self.data_dir / KEY_NAME
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(AESGCM.generate_key(bit_length=256))
            self._aead = AESGCM(path.read_bytes())
        return self._aead
