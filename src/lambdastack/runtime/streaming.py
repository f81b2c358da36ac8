"""A response the runtime streams to the init, and Lambda's limits on it.

A runtime streams by posting `.../response` with `Lambda-Runtime-Function-Response-Mode:
streaming` and a chunked body; an error after the first bytes comes as the trailers
`Lambda-Runtime-Function-Error-Type` and `Lambda-Runtime-Function-Error-Body` (base64 of
the error document). Lambda takes up to 200 MB this way; the first 6 MB go as fast as the
function writes them, the rest at most 2 MB/s. The init holds the runtime to that rate: what
it read ahead of the rate waits, and meanwhile it does not read the runtime's connection
(TCP then makes the runtime's writes wait).
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
RELEASE_SLICE = 64 * 1024  # how much goes at a time once the cap applies


def is_streamed_response(method: str, path: str, headers: Dict[str, str]) -> bool:
    """Whether a Runtime API request is a response posted in streaming mode."""
    return (method == "POST" and headers.get(RESPONSE_MODE, "").lower() == "streaming"
            and path.split("?", 1)[0].endswith("/response"))


class ResponseStream:
    """One streamed `.../response` request, from its head to its last chunk.

    Bytes read from the runtime are held until the bandwidth cap lets them go: what has
    been relayed never runs ahead of the first 6 MB plus 2 MB for each second since.
    """

    __slots__ = ("capped_since", "conn", "dropped", "held", "invocation", "refusal", "relayed", "size",
                 "trailers")

    def __init__(self, conn: Any, invocation: Any = None,
                 refusal: Optional[Tuple[int, str, Dict[str, str]]] = None) -> None:
        self.conn = conn
        self.invocation = invocation  # None when refused: its body is read and dropped
        self.refusal = refusal  # (status, reason, document) to answer once the body has been read
        self.dropped = False  # no longer relayed (it grew too large)
        self.size = 0  # bytes read
        self.relayed = 0
        self.held = bytearray()  # read, not relayed yet
        self.capped_since: Optional[float] = None  # when the uncapped part was used up
        self.trailers: Optional[Dict[str, str]] = None  # once the body has been read to its end

    def take(self, data: bytes, now: float) -> None:
        self.size += len(data)
        self.held += data
        if self.capped_since is None and self.size > UNCAPPED_BYTES:
            self.capped_since = now

    @property
    def too_large(self) -> bool:
        return self.size > MAX_STREAM_BYTES

    def release(self, now: float) -> bytes:
        """The held bytes the bandwidth cap lets go now."""
        count = len(self.held)
        if self.capped_since is not None:
            allowed = UNCAPPED_BYTES + int((now - self.capped_since) * CAPPED_BYTES_PER_S) - self.relayed
            count = max(0, min(count, allowed))
        data = bytes(self.held[:count])
        del self.held[:count]
        self.relayed += count
        return data

    def next_release_at(self) -> Optional[float]:
        """When the next slice of the held bytes may go (None: nothing is held)."""
        if not self.held or self.capped_since is None:
            return None
        due = self.relayed + min(len(self.held), RELEASE_SLICE) - UNCAPPED_BYTES
        return self.capped_since + due / CAPPED_BYTES_PER_S


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
