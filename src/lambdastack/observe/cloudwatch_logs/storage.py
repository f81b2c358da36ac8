"""Queries over LogStore's files: a stream is one file of JSON lines, `{"timestamp", "message"}`,
appended in time order (see observe/logs.py).

Every event is stamped when the platform receives it, so an event's ingestion time is its
timestamp.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from lambdastack.observe.logs import LogStore

TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class StreamFile:
    """One log stream of a log group: the file of one function's environment."""

    name: str
    function: str
    path: Path


@dataclass(frozen=True)
class Summary:
    first: int  # timestamp of its first event
    last: int  # timestamp of its last event
    size: int  # bytes on disk


@dataclass(frozen=True)
class Event:
    timestamp: int
    rank: int  # how many events of the same millisecond come before it in its stream
    message: str


def function_folders(logs: LogStore, account: str, region: str) -> list[str]:
    """Functions that have a folder of logs (names never start with a dot: those are ours)."""
    folder = logs.root / account / region
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def stream_files(logs: LogStore, account: str, region: str, function: str) -> list[StreamFile]:
    folder = logs.root / account / region / function
    if not folder.is_dir():
        return []
    out = []
    for path in folder.rglob("*.jsonl"):
        out.append(StreamFile(str(path.relative_to(folder))[: -len(".jsonl")], function, path))
    return out


def summary(path: Path) -> Summary | None:
    """First and last timestamps of a stream, from its first line and its tail (None: empty)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            first_line = f.readline()
            if not first_line.strip():
                return None
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read().splitlines()
    except FileNotFoundError:
        return None
    first = int(orjson.loads(first_line)["timestamp"])
    last = first
    for line in reversed(tail):
        try:
            last = int(orjson.loads(line)["timestamp"])
            break
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # the tail's first line may be cut in the middle
    return Summary(first, last, size)


def events(path: Path, start: int | None = None, end: int | None = None) -> Iterator[Event]:
    """The stream's events with start <= timestamp < end, oldest first."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    previous, rank = None, 0
    loads = orjson.loads
    for line in data.splitlines():
        if not line:
            continue
        record = loads(line)
        timestamp = record["timestamp"]
        rank = rank + 1 if timestamp == previous else 0
        previous = timestamp
        if start is not None and timestamp < start:
            continue
        if end is not None and timestamp >= end:
            continue
        yield Event(timestamp, rank, record["message"])


def expire(logs: LogStore, account: str, region: str, stream: StreamFile, cutoff: int) -> int:
    """Delete the stream's events older than `cutoff` (ms) from disk; how many were deleted."""
    found = summary(stream.path)
    if found is None or found.first >= cutoff:
        return 0
    with logs.lock:
        logs.forget(account, region, stream.function, stream.name)
        try:
            lines = stream.path.read_bytes().splitlines()
        except FileNotFoundError:
            return 0
        kept = [line for line in lines if line and orjson.loads(line)["timestamp"] >= cutoff]
        if not kept:
            stream.path.unlink(missing_ok=True)
        else:
            temporary = stream.path.with_name(stream.path.name + ".expiring")
            temporary.write_bytes(b"\n".join(kept) + b"\n")
            os.replace(temporary, stream.path)
    return len(lines) - len(kept)
