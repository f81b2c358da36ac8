"""What the worker accepts on a runtime's own socket (see runtime/python/channel_client.py).

The init is a process of ours, under a user of its own; the runtime's socket is in the
function's process, where the function's code can write anything to it. So frames from it
are bounded (meta and body sizes, checked on the header), limited to what a runtime sends
(READY, RESPONSE, ERROR, INIT_ERROR), and reduced to the fields the worker reads, with
their types checked. Durations are not taken from it: the worker measures them itself, as
a function must not set what it is billed. Anything else ends the environment.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from lambdastack.runtime import protocol

MAX_META_BYTES = 64 * 1024
_TEXT_LIMIT = 1024  # request ids, content types, error types


class ProtocolViolation(Exception):
    """The runtime sent something no runtime of ours sends."""


def reader() -> protocol.FrameReader:
    return protocol.FrameReader(orjson.loads, max_meta=MAX_META_BYTES, max_body=protocol.MAX_RESPONSE_BYTES)


def too_large(error: protocol.FrameTooLarge) -> protocol.Frame:
    """What an oversized result becomes: the init's answer to one (the environment then ends)."""
    if error.kind not in (protocol.RESPONSE, protocol.ERROR) or error.body_len <= protocol.MAX_RESPONSE_BYTES:
        raise ProtocolViolation(str(error))
    body = json.dumps({"errorMessage": protocol.too_large_message(error.body_len),
                       "errorType": "Function.ResponseSizeTooLarge"}).encode()
    return protocol.ERROR, {"error_type": "Function.ResponseSizeTooLarge"}, body


def checked(frame: protocol.Frame) -> protocol.Frame:
    """The frame with only the fields the worker reads; raises ProtocolViolation."""
    kind, meta, body = frame
    if not isinstance(meta, dict):
        raise ProtocolViolation("a frame's meta is not an object")
    if kind == protocol.READY:
        return kind, {"extensions": 0, "runtime_pid": _int(meta, "runtime_pid")}, b""
    if kind == protocol.RESPONSE:
        return kind, {"request_id": _text(meta, "request_id"),
                      "content_type": _text(meta, "content_type") or "application/json"}, body
    if kind == protocol.ERROR:
        return kind, {"request_id": _text(meta, "request_id"),
                      "error_type": _text(meta, "error_type") or "Runtime.Unknown"}, body
    if kind == protocol.INIT_ERROR:
        return kind, {"error_type": _text(meta, "error_type") or "Runtime.Unknown"}, body
    raise ProtocolViolation(f"a runtime does not send {protocol.NAMES.get(kind, kind)} frames")


def _text(meta: dict[str, Any], key: str) -> str:
    value = meta.get(key, "")
    if not isinstance(value, str) or len(value) > _TEXT_LIMIT:
        raise ProtocolViolation(f"{key} is not a short string")
    return value


def _int(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 31:
        raise ProtocolViolation(f"{key} is not a small integer")
    return value
