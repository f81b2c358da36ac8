"""The X-Ray trace header (`Root=1-<8 hex time>-<24 hex>;Parent=<16 hex>;Sampled=0|1`), W3C
`traceparent`, and the mapping between an X-Ray root and a 128-bit OpenTelemetry trace id
(the one AWS's X-Ray propagator uses: the 32 hex digits are the root's two parts joined)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from lambdastack.ids import random_hex

_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_SPAN = re.compile(r"[0-9a-f]{16}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class TraceHeader:
    root: str  # "1-5759e988-bd862e3fe1be46a994272793"
    parent: str | None = None  # the span the next one descends from, 16 hex digits
    sampled: bool | None = None  # None: the sender left the decision to the receiver

    def format(self) -> str:
        text = f"Root={self.root}"
        if self.parent:
            text += f";Parent={self.parent}"
        if self.sampled is not None:
            text += f";Sampled={int(self.sampled)}"
        return text

    @property
    def trace_id(self) -> int:
        """The OpenTelemetry trace id of this root."""
        return int(self.root[2:10] + self.root[11:], 16)

    def child(self, parent: str | None, sampled: bool) -> TraceHeader:
        return TraceHeader(self.root, parent, sampled)


def root_of(trace_id: int) -> str:
    """The X-Ray root of an OpenTelemetry trace id."""
    digits = f"{trace_id:032x}"
    return f"1-{digits[:8]}-{digits[8:]}"


def new_root() -> str:
    return f"1-{int(time.time()):08x}-{random_hex(24)}"


def new_span_id() -> str:
    return random_hex(16)


def untraced_header(upstream: TraceHeader | None, sampled: bool) -> str:
    """The header of an invocation no span of this platform records: the upstream trace, if any,
    with a segment id of its own, as Lambda passes to every invocation whether traced or not."""
    if upstream is not None:
        return f"Root={upstream.root};Parent={new_span_id()};Sampled={int(sampled)}"
    raw = random_hex(40)  # the root's and the parent's random digits at once
    return f"Root=1-{int(time.time()):08x}-{raw[:24]};Parent={raw[24:]};Sampled={int(sampled)}"


def parse_xray(value: str) -> TraceHeader | None:
    """An `X-Amzn-Trace-Id` header; None when it has no valid Root (then it is ignored, as on AWS)."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key.strip().lower()] = val.strip()
    root = fields.get("root", "").lower()
    if not _ROOT.fullmatch(root):
        return None
    parent = fields.get("parent", "").lower()
    sampled = fields.get("sampled")
    return TraceHeader(root, parent if _SPAN.fullmatch(parent) and int(parent, 16) else None,
                       True if sampled == "1" else False if sampled == "0" else None)


def parse_traceparent(value: str) -> TraceHeader | None:
    """A W3C `traceparent` header (version 00 and later versions' first four fields)."""
    found = _TRACEPARENT.match(value.strip().lower())
    if found is None or found.group(1) == "ff":
        return None
    trace_id, span_id = int(found.group(2), 16), int(found.group(3), 16)
    if not trace_id or not span_id:
        return None
    return TraceHeader(root_of(trace_id), found.group(3), bool(int(found.group(4), 16) & 1))


def incoming(xray: str | None, traceparent: str | None) -> TraceHeader | None:
    """The trace a request belongs to: its `X-Amzn-Trace-Id`, else its `traceparent`."""
    if xray:
        header = parse_xray(xray)
        if header is not None:
            return header
    if traceparent:
        return parse_traceparent(traceparent)
    return None
