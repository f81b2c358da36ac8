"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RequestContext:
    request_id: str
    account: str
    region: str
    base_url: str
    access_key: str | None = None
