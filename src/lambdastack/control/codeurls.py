"""Time-limited download links for function code, as GetFunction's `Code.Location`.

Lambda hands out a presigned URL that is valid for ten minutes; lambdastack hands out
`<endpoint>/_lambdastack/code/<token>`, where the token names the package and its expiry
and carries an HMAC of both under a key kept in the data directory (so links survive a
restart, and cannot be forged or extended).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path

ROUTE = "/_lambdastack/code/"
TTL_SECONDS = 600
_TOKEN = re.compile(r"^([0-9a-f]{64})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$")


class InvalidToken(Exception):
    pass


class CodeUrlSigner:
    def __init__(self, key: bytes, ttl: int = TTL_SECONDS) -> None:
        self.key = key
        self.ttl = ttl

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> CodeUrlSigner:
        path = Path(data_dir) / "code-url.key"
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            key = path.read_bytes()
        return cls(key)

    def _mac(self, sha_hex: str, expires: int) -> str:
        digest = hmac.new(self.key, f"{sha_hex}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token(self, sha256_hex: str, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.ttl)
        return f"{sha256_hex}.{expires}.{self._mac(sha256_hex, expires)}"

    def url(self, base_url: str, sha256_hex: str) -> str:
        return f"{base_url.rstrip('/')}{ROUTE}{self.token(sha256_hex)}"

    def verify(self, token: str, now: float | None = None) -> str:
        """Return the SHA-256 the token grants access to, or raise InvalidToken."""
        m = _TOKEN.match(token)
        if m is None:
            raise InvalidToken("malformed code token")
        sha_hex, expires, mac = m.group(1), int(m.group(2)), m.group(3)
        if not hmac.compare_digest(mac, self._mac(sha_hex, expires)):
            raise InvalidToken("bad signature")
        if (now if now is not None else time.time()) > expires:
            raise InvalidToken("the link has expired")
        return sha_hex
