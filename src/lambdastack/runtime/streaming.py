"""A response the runtime streams to the init, and Lambda's limits on it.

A runtime streams by posting `.../response` with `Lambda-Runtime-Function-Response-Mode:
streaming` and a chunked body; an error after the first bytes comes as the trailers
`Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body` (base64 of
the error document). Lambda takes up to 200 MB this way; the first 6 MB go as fast as the
function writes them, the rest at most 2 MB/s. The init holds the runtime to that rate by
not reading its connection while it is ahead (TCP then makes the runtime's writes wait).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, Optional, Tuple

RESPONSE_MODE = "lambda-runtime-function-response-mode"
ERROR_TYPE_TRAILER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

MAX_STREAM_BYTES = 200 * 1024 * 1024
UNCAPPED_BYTES = 6 * 1024 * 1024
CAPPED_BYTES_PER_S = 2 * 1024 * 1024


def is_streamed_response(method: str, path: str, headers: Dict[str, str]) -> bool:
    """Whether a Runtime API request is a response posted in streaming mode."""
    return (method == "POST" and headers.get(RESPONSE_MODE, "").lower() == "streaming"
            and path.split("?", 1)[0].endswith("/response"))


class ResponseStream:
    """One streamed `.../response` request, from its head to its last chunk."""

    __slots__ = ("capped_since", "conn", "dropped", "invocation", "refusal", "size")

    def __init__(self, conn: Any, invocation: Any = None,
                 refusal: Optional[Tuple[int, str, Dict[str, str]]] = None) -> None:
        self.conn = conn
        self.invocation = invocation  # None when refused: its body is read and dropped
        self.refusal = refusal  # (status, reason, document) to answer once the body has been read
        self.dropped = False  # no longer relayed (too large, or the invocation ended otherwise)
        self.size = 0
        self.capped_since: Optional[float] = None  # when the uncapped part was used up

    def take(self, size: int, now: float) -> None:
        self.size += size
        if self.capped_since is None and self.size > UNCAPPED_BYTES:
            self.capped_since = now

    @property
    def too_large(self) -> bool:
        return self.size > MAX_STREAM_BYTES

    def resume_at(self, now: float) -> Optional[float]:
        """When the bytes taken so far fit the bandwidth cap; None if they fit now."""
        if self.capped_since is None:
            return None
        due = self.capped_since + (self.size - UNCAPPED_BYTES) / CAPPED_BYTES_PER_S
        return due if due > now else None


def error_body(trailers: Dict[str, str]) -> Tuple[Optional[str], bytes]:
    """(error type, error document) from a streamed response's trailers; (None, b"") if it succeeded."""
    error_type = trailers.get(ERROR_TYPE_TRAILER)
    if not error_type:
        return None, b""
    encoded = trailers.get(ERROR_BODY_TRAILER, "")
    try:
        body = base64.b64decode(encoded, validate=True)
        json.loads(body)
    except (binascii.Error, ValueError):
        body = b""  # the worker builds a document from the type alone
    return error_type, body
