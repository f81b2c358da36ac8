"""Short-lived execution-role credentials for each function, as Lambda gives them.

A function's environment gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN,
so an SDK inside it signs requests with no configuration. They are minted by the server
from a key of its own (`identity.key` in the data directory, never inside an environment):

- the session token carries who they are for (the function's ARN and role) and when they
  expire, sealed with an HMAC of the server's key, so it cannot be changed or forged;
- the access key id is derived from the token, and the secret from the access key id, both
  with the same key.

So a server that receives a signed request can tell, from the access key id and the token
alone (`identify`), which function is calling, and recompute the secret to check the
signature; one function's credentials cannot be turned into another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

# Lambda's credentials last as long as the execution role's session; environments here are
# reaped long before this (10 minutes idle by default).
LIFETIME_S = 12 * 3600


@dataclass(frozen=True)
class Caller:
    function_arn: str
    role: str
    expires: int


class CredentialMinter:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> CredentialMinter:
        path = data_dir / "identity.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def mint(self, function_arn: str, role: str, now: float | None = None) -> dict[str, str]:
        """The three environment variables of a function's credentials."""
        claims = {"arn": function_arn, "role": role, "exp": int((now or time.time()) + LIFETIME_S),
                  "n": secrets.token_hex(4)}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        token = f"{payload}.{_b64(self._mac(b'token', payload))}"
        access_key_id = self._access_key_id(token)
        return {
            "AWS_ACCESS_KEY_ID": access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_for(access_key_id),
            "AWS_SESSION_TOKEN": token,
        }

    def identify(self, access_key_id: str, session_token: str, now: float | None = None) -> Caller | None:
        """The function these credentials were minted for, or None (forged, altered or expired)."""
        payload, _, mac = session_token.partition(".")
        if not hmac.compare_digest(mac, _b64(self._mac(b"token", payload))):
            return None
        if not hmac.compare_digest(access_key_id, self._access_key_id(session_token)):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            return None
        if int(claims["exp"]) < (now or time.time()):
            return None
        return Caller(str(claims["arn"]), str(claims["role"]), int(claims["exp"]))

    @staticmethod
    def expires(session_token: str) -> int:
        """When credentials minted here expire (epoch seconds), read without checking the seal."""
        payload = session_token.partition(".")[0]
        return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])

    def secret_for(self, access_key_id: str) -> str:
        return base64.b64encode(self._mac(b"secret", access_key_id)).decode()[:40]

    def _access_key_id(self, token: str) -> str:
        return "ASIA" + base64.b32encode(self._mac(b"akid", token)).decode()[:16]

    def _mac(self, purpose: bytes, text: str) -> bytes:
        return hmac.new(self._key, purpose + b"\0" + text.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
