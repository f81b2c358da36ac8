"""PutLogEvents: checking a batch as CloudWatch Logs does, and adding it to a stream's file.

A stream's file keeps its events in time order (FilterLogEvents bisects it). A batch that
starts at or after the stream's last event is appended; one that reaches back before it is
merged into the file (rewritten aside, then swapped under LogStore's lock).
"""

from __future__ import annotations

import heapq
import itertools
import os
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.observe.cloudwatch_logs import storage
from lambdastack.observe.logs import LogStore

MAX_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_SPAN_MS = 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000  # events more than 2 hours in the future are rejected
TOO_OLD_MS = 14 * 24 * 3600 * 1000  # and those older than 14 days
STREAM_NAME_LIMIT = 512


def check_stream_name(name: str) -> None:
    if not name or len(name) > STREAM_NAME_LIMIT or ":" in name or "*" in name:
        raise errors.InvalidParameter(
            f"1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [^:*]*")


def check_batch(events: list[dict[str, Any]]) -> None:
    """The checks that refuse a whole batch (AWS's error types and words)."""
    if len(events) > MAX_EVENTS:
        raise errors.InvalidParameter(
            f"1 validation error detected: Value '{len(events)}' at 'logEvents' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_EVENTS}")
    size = sum(len(str(e["message"]).encode()) + EVENT_OVERHEAD for e in events)
    if size > MAX_BATCH_BYTES:
        raise errors.InvalidParameter(f"Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}")
    stamps = [int(e["timestamp"]) for e in events]
    if any(b < a for a, b in itertools.pairwise(stamps)):
        raise errors.InvalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
    if stamps and stamps[-1] - stamps[0] > MAX_SPAN_MS:
        raise errors.InvalidParameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")


def triage(events: list[dict[str, Any]], now_ms: int, retention_days: int | None
           ) -> tuple[list[tuple[int, str]], dict[str, int]]:
    """(the events to keep, `rejectedLogEventsInfo`): too old, expired by the group's retention, too new."""
    stamps = [int(e["timestamp"]) for e in events]
    rejected: dict[str, int] = {}
    old = [i for i, t in enumerate(stamps) if t < now_ms - TOO_OLD_MS]
    expired = [i for i, t in enumerate(stamps) if retention_days and t < now_ms - retention_days * 86_400_000]
    new = [i for i, t in enumerate(stamps) if t > now_ms + TOO_NEW_MS]
    if old:
        rejected["tooOldLogEventEndIndex"] = old[-1]
    if expired:
        rejected["expiredLogEventEndIndex"] = expired[-1]
    if new:
        rejected["tooNewLogEventStartIndex"] = new[0]
    dropped = set(old) | set(expired) | set(new)
    kept = [(stamps[i], str(e["message"])) for i, e in enumerate(events) if i not in dropped]
    return kept, rejected


def _lines(events: list[tuple[int, str]]) -> bytes:
    return b"".join(orjson.dumps({"timestamp": t, "message": m}) + b"\n" for t, m in events)


def add(logs: LogStore, account: str, region: str, stream: storage.StreamFile, events: list[tuple[int, str]]) -> None:
    """Add time-ordered `events` to the stream's file, keeping the file in time order."""
    if not events:
        return
    with logs.lock:
        found = storage.summary(stream.path)
        if found is None or events[0][0] >= found.last:
            logs.forget(account, region, stream.function, stream.name)
            with open(stream.path, "ab") as f:
                f.write(_lines(events))
            return
        logs.forget(account, region, stream.function, stream.name)
        stored = [(e.timestamp, e.message) for e in storage.events(stream.path)]
        merged = list(heapq.merge(stored, events, key=lambda e: e[0]))
        temporary = stream.path.with_name(stream.path.name + ".merging")
        temporary.write_bytes(_lines(merged))
        os.replace(temporary, stream.path)
