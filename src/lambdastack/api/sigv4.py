"""Read the caller's identity from a SigV4 signature.

In the embedded default any credentials are accepted; only the credential scope matters:
its region becomes the region of every ARN the request touches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


@dataclass(frozen=True)
class Caller:
    access_key: str | None
    region: str | None
    service: str | None = None


def caller_from(authorization: str | None, query_credential: str | None = None) -> Caller:
    text = authorization or ""
    if query_credential and not text:
        text = "Credential=" + query_credential
    m = _CREDENTIAL.search(text)
    if m is None:
        return Caller(None, None)
    return Caller(access_key=m.group(1), region=m.group(3), service=m.group(4))
