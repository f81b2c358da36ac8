"""`--since` / `?since=`: a span back from now (`30d`, `12h`, `90m`, `2w`) or a date (`2026-12-01`)."""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"(\d+)([smhdw])")


class SinceError(ValueError):
    pass


def parse_since(text: str, now: float) -> float:
    """Seconds since the epoch that `text` stands for."""
    value = text.strip()
    match = _SPAN.fullmatch(value)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SinceError(
            f"Invalid since value {text!r}: give a span back from now such as 30d, 12h, 90m or 2w, "
            f"or a date such as 2026-12-01 (UTC)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
