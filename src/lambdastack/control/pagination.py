"""List markers: opaque to clients, a position in a stable order to the server.

A marker holds the key of the last item returned, so a page starts right after it even
when items were added or removed meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.control.limits import PAGE_MAX


def page_size(max_items: int | None) -> int:
    return min(max_items or PAGE_MAX, PAGE_MAX)


def encode(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode()


def decode(marker: str | None) -> Any:
    if marker is None:
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(marker.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise errors.InvalidParameterValue(f"Invalid marker: {marker}")
