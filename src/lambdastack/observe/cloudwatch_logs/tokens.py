"""Pagination tokens, shaped as CloudWatch Logs shapes them.

GetLogEvents: `f/<56 digits>/s` (forward) and `b/<56 digits>/s` (backward). The digits are a
position between two events of the stream: an event's position is its timestamp and its
rank among the events of that same millisecond, which stays true when older events expire
(retention removes whole milliseconds from the front of a stream).

The other operations' tokens are opaque: a JSON document, base64url-encoded.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

RANK_DIGITS = 36  # 20 digits of timestamp + 36 of rank = 56, the length of AWS's tokens
_SEQUENCE = re.compile(r"([fb])/(\d{1,56})/s")


class TokenError(ValueError):
    """A token this server did not hand out."""


def position(timestamp: int, rank: int) -> int:
    """The position just before the event (timestamp, rank)."""
    return timestamp * 10**RANK_DIGITS + rank


def sequence_token(direction: str, at: int) -> str:
    return f"{direction}/{at:056d}/s"


def parse_sequence_token(token: str) -> tuple[str, int]:
    m = _SEQUENCE.fullmatch(token)
    if m is None:
        raise TokenError(token)
    return m.group(1), int(m.group(2))


def event_id(timestamp: int, stream_hash: int, rank: int) -> str:
    """A 56-digit event id, unique within a log group, as AWS's eventId looks."""
    return f"{timestamp:020d}{stream_hash % 10**10:010d}{rank % 10**26:026d}"


def opaque_token(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def parse_opaque_token(token: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise TokenError(token) from None
