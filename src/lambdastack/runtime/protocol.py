"""Frames between a worker and the init process of one of its environments.

A frame is `kind (1 byte) | meta length (4) | body length (4) | meta (JSON) | body`, sent
over a stream socket. The meta carries small fields (request id, deadline, error type,
durations); the body carries payloads verbatim, so events and results are never re-encoded.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any, Dict, List, Optional, Tuple

HEADER = struct.Struct("!BII")

# worker -> init
INVOKE = 1
SHUTDOWN = 2
ASSIGN = 3  # a pre-built environment learns its function (the code's mount tree rides along)
# init -> worker
READY = 10  # the runtime asked for its first event: init is complete
INIT_ERROR = 11  # the runtime posted /runtime/init/error
RESPONSE = 12  # the runtime posted .../response
ERROR = 13  # the runtime posted .../error (or the init reports one for it)
EXITED = 14  # the runtime process exited
SETUP_ERROR = 15  # the environment could not be built
IDLE = 16  # the runtime and every extension wait for their next event: the environment may be frozen
# A response posted in streaming mode (`Lambda-Runtime-Function-Response-Mode: streaming`),
# relayed piece by piece as it arrives: START (content type), CHUNKs, then END (with the
# error the runtime sent as trailers, if any).
STREAM_START = 30
STREAM_CHUNK = 31
STREAM_END = 32

NAMES = {
    INVOKE: "INVOKE", SHUTDOWN: "SHUTDOWN", ASSIGN: "ASSIGN", READY: "READY", INIT_ERROR: "INIT_ERROR",
    RESPONSE: "RESPONSE", ERROR: "ERROR", EXITED: "EXITED", SETUP_ERROR: "SETUP_ERROR", IDLE: "IDLE",
    STREAM_START: "STREAM_START", STREAM_CHUNK: "STREAM_CHUNK", STREAM_END: "STREAM_END",
}

Frame = Tuple[int, Dict[str, Any], bytes]

# Lambda's limit on a synchronous (buffered) result, and what a larger one is answered with:
# the runtime is told 413 (`refusal_of_too_large`), the invocation fails with
# Function.ResponseSizeTooLarge (`too_large_message`). Whoever reads the result enforces it.
MAX_RESPONSE_BYTES = 6_291_556


def too_large_message(size: int) -> str:
    return ("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes)."
            % (size, MAX_RESPONSE_BYTES))


def refusal_of_too_large() -> Dict[str, str]:
    return {"errorMessage": "Exceeded maximum allowed payload size (%d bytes)." % MAX_RESPONSE_BYTES,
            "errorType": "RequestEntityTooLarge"}


def encode(kind: int, meta: Optional[Dict[str, Any]] = None, body: bytes = b"") -> bytes:
    raw = json.dumps(meta, separators=(",", ":")).encode() if meta else b""
    return HEADER.pack(kind, len(raw), len(body)) + raw + body


class FrameTooLarge(ValueError):
    """A frame's header announces more than the reader accepts."""

    def __init__(self, kind: int, meta_len: int, body_len: int) -> None:
        super().__init__("frame %s with %d bytes of meta and %d of body" % (NAMES.get(kind, kind), meta_len, body_len))
        self.kind = kind
        self.body_len = body_len


class FrameReader:
    """Incremental decoder: feed bytes, get whole frames.

    `loads` decodes the meta; `max_meta` and `max_body` (None: no limit) bound what one
    frame may announce, checked on its header: past them `feed` raises FrameTooLarge.
    """

    __slots__ = ("_buf", "_loads", "_max_body", "_max_meta")

    def __init__(self, loads: Any = json.loads, max_meta: Optional[int] = None,
                 max_body: Optional[int] = None) -> None:
        self._buf = bytearray()
        self._loads = loads
        self._max_meta = max_meta
        self._max_body = max_body

    def feed(self, data: bytes) -> List[Frame]:
        self._buf += data
        frames: List[Frame] = []
        buf = self._buf
        loads = self._loads
        while len(buf) >= HEADER.size:
            kind, meta_len, body_len = HEADER.unpack_from(buf)
            if ((self._max_meta is not None and meta_len > self._max_meta)
                    or (self._max_body is not None and body_len > self._max_body)):
                raise FrameTooLarge(kind, meta_len, body_len)
            end = HEADER.size + meta_len + body_len
            if len(buf) < end:
                break
            meta = loads(bytes(buf[HEADER.size:HEADER.size + meta_len])) if meta_len else {}
            body = bytes(buf[HEADER.size + meta_len:end])
            del buf[:end]
            frames.append((kind, meta, body))
        return frames


def read_frame(sock: socket.socket) -> "Tuple[int, Dict[str, Any], bytes, List[int]]":
    """Read one frame from a blocking socket, with the descriptors that came with it."""
    data = bytearray()
    fds: List[int] = []
    need = HEADER.size
    while len(data) < need:
        chunk, new_fds, _, _ = socket.recv_fds(sock, need - len(data), 4)
        if not chunk:
            raise EOFError("the channel closed")
        data += chunk
        fds += new_fds
        if len(data) >= HEADER.size and need == HEADER.size:
            _, meta_len, body_len = HEADER.unpack_from(data)
            need = HEADER.size + meta_len + body_len
    kind, meta_len, body_len = HEADER.unpack_from(data)
    meta = json.loads(bytes(data[HEADER.size:HEADER.size + meta_len])) if meta_len else {}
    return kind, meta, bytes(data[HEADER.size + meta_len:]), fds
