"""The AWS event-stream encoding, for operations whose output is a stream of events.

Each event is one binary message: a prelude (total length, headers length, CRC32 of the
two), headers (`:event-type`, `:message-type`, `:content-type`), the payload, and a CRC32
of everything before it. It is the format botocore decodes in `botocore/eventstream.py`.
Which event member becomes the payload, and how, comes from the service model: a member
marked `eventpayload` is the payload itself (a blob as is), the other members of the
event are a JSON document.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

from lambdastack.service_models import ServiceModel

_PRELUDE = struct.Struct("!II")
_CRC = struct.Struct("!I")
_STRING_HEADER = 7


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    raw_headers = bytearray()
    for name, value in headers:
        name_bytes, value_bytes = name.encode(), value.encode()
        raw_headers += struct.pack("!B", len(name_bytes)) + name_bytes
        raw_headers += struct.pack("!BH", _STRING_HEADER, len(value_bytes)) + value_bytes
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    message = bytearray(prelude)
    message += _CRC.pack(zlib.crc32(prelude))
    message += raw_headers
    message += payload
    message += _CRC.pack(zlib.crc32(message))
    return bytes(message)


class EventStreamEncoder:
    """Encodes events (`{"MemberName": {...}}`) of one event-stream shape of a model."""

    def __init__(self, model: ServiceModel, shape_name: str) -> None:
        self.model = model
        self.members: dict[str, Any] = model.shape(shape_name)["members"]

    def encode(self, event: dict[str, Any]) -> bytes:
        (event_type, value), = event.items()
        shape = self.model.shape(self.members[event_type]["shape"])
        payload_member = next((name for name, ref in shape["members"].items() if ref.get("eventpayload")), None)
        if payload_member is not None:
            kind = self.model.shape(shape["members"][payload_member]["shape"])["type"]
            data = value.get(payload_member)
            if kind == "blob":
                payload, content_type = bytes(data or b""), "application/octet-stream"
            elif kind == "string":
                payload, content_type = (data or "").encode(), "text/plain"
            else:
                payload, content_type = orjson.dumps(data or {}), "application/json"
        else:
            document = {k: v for k, v in value.items() if v is not None and k in shape["members"]}
            payload, content_type = orjson.dumps(document), "application/json"
        return encode_message(
            [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")], payload,
        )
