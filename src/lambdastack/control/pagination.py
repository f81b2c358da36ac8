"""List markers: opaque to clients, a position in a stable order to the server.

A marker holds the key of the last item returned, so a page starts right after it even
when items were added or removed meanwhile.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from lambdastack import errors
from lambdastack.control.limits import PAGE_MAX


class _Qualified(Protocol):
    qualifier: str


T = TypeVar("T", bound=_Qualified)


def page_by_qualifier(records: list[T], marker: str | None, max_items: int | None) -> tuple[list[T], str | None]:
    """One page of `records` (ordered by their `qualifier`) after `marker`, and the next marker."""
    after = decode(marker, is_str)
    rest = [r for r in records if after is None or r.qualifier > after]
    size = page_size(max_items)
    page = rest[:size]
    return page, (encode(page[-1].qualifier) if len(rest) > size else None)


def page_size(max_items: int | None) -> int:
    return min(max_items or PAGE_MAX, PAGE_MAX)


def encode(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode()


def decode(marker: str | None, accepts: Callable[[Any], bool]) -> Any:
    """The key in `marker` (None without one); a marker that is not ours, or whose key
    `accepts` refuses, is Lambda's InvalidParameterValue."""
    if marker is None:
        return None
    try:
        key = orjson.loads(base64.urlsafe_b64decode(marker.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise errors.InvalidParameterValue(f"Invalid marker: {marker}")
    if key is not None and not accepts(key):
        raise errors.InvalidParameterValue(f"Invalid marker: {marker}")
    return key


def is_str(key: Any) -> bool:
    return isinstance(key, str)


def is_int(key: Any) -> bool:
    return isinstance(key, int)
