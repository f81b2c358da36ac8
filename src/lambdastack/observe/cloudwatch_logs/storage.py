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


# Where a stream's events may be a little out of order (the clock stepped back between two
# appends), a search by time starts this much earlier and ends this much later, then filters.
CLOCK_SLACK_MS = 60_000
LINE_START = b'{"timestamp":'


def scan(path: Path, start: int | None, end: int | None, every: tuple[bytes, ...] = (),
         some: tuple[bytes, ...] = ()) -> Iterator[Event]:
    """The events of `events(path, start, end)` whose stored line holds every byte string of
    `every` and one of `some` (when given), oldest first.

    The time range is found by bisecting the file (its lines are in time order), and only the
    lines that hold the bytes are parsed: a search of a day among many is a few finds over
    the bytes of the streams that overlap it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if not data.startswith(LINE_START) or (not every and not some and start is None and end is None):
        yield from events(path, start, end)  # not LogStore's layout: line by line
        return
    lo = 0 if start is None else _bisect(data, start - CLOCK_SLACK_MS)
    hi = len(data) if end is None else _bisect(data, end + CLOCK_SLACK_MS)
    loads = orjson.loads
    for line_start, line_end in _candidates(data, lo, hi, every, some):
        line = data[line_start:line_end]
        if every and not all(needle in line for needle in every):
            continue
        record = loads(line)
        timestamp = record["timestamp"]
        if (start is not None and timestamp < start) or (end is not None and timestamp >= end):
            continue
        yield Event(timestamp, _rank(data, line_start, line[:line.index(b",") + 1]), record["message"])


def _candidates(data: bytes, lo: int, hi: int, every: tuple[bytes, ...],
                some: tuple[bytes, ...]) -> Iterator[tuple[int, int]]:
    """(start, end) of the lines within [lo, hi) that hold `every[0]` or one of `some`."""
    if not every and not some:
        pos = lo
        while pos < hi:
            end = data.find(b"\n", pos, hi)
            end = hi if end == -1 else end
            if end > pos:
                yield pos, end
            pos = end + 1
        return
    needles = every[:1] if every else some
    starts: set[int] = set()
    found: list[tuple[int, int]] = []
    for needle in needles:
        pos = data.find(needle, lo, hi)
        while pos != -1:
            line_start = max(lo, data.rfind(b"\n", lo, pos) + 1)
            line_end = data.find(b"\n", pos, hi)
            line_end = hi if line_end == -1 else line_end
            if line_start not in starts:
                starts.add(line_start)
                found.append((line_start, line_end))
            pos = data.find(needle, line_end + 1, hi) if line_end < hi else -1
    if len(needles) > 1:
        found.sort()
    yield from found


def _bisect(data: bytes, timestamp: int) -> int:
    """Offset of the first line whose timestamp is at least `timestamp` (lines in time order)."""
    lo, hi = 0, len(data)  # invariant: lo is a line start
    while lo < hi:
        mid = (lo + hi) // 2
        line_start = data.rfind(b"\n", 0, mid) + 1
        if line_start < lo:
            line_start = lo
        line_end = data.find(b"\n", line_start)
        line_end = len(data) if line_end == -1 else line_end
        if _timestamp_at(data, line_start) < timestamp:
            lo = line_end + 1
        else:
            hi = line_start
    return min(lo, len(data))


def _timestamp_at(data: bytes, line_start: int) -> int:
    comma = data.find(b",", line_start)
    return int(data[line_start + len(LINE_START):comma])


def _rank(data: bytes, line_start: int, prefix: bytes) -> int:
    """How many lines just before this one carry the same timestamp (`prefix`: `{"timestamp":N,`)."""
    rank = 0
    while line_start > 0:
        previous = data.rfind(b"\n", 0, line_start - 1) + 1
        if not data.startswith(prefix, previous):
            break
        rank += 1
        line_start = previous
    return rank


def expire(logs: LogStore, account: str, region: str, stream: StreamFile, cutoff: int) -> int:
    """Delete the stream's events older than `cutoff` (ms) from disk; how many were deleted.

    The file is read and its new version written aside first; only the swap (with whatever
    was appended meanwhile) holds LogStore's lock, which appends wait for.
    """
    found = summary(stream.path)
    if found is None or found.first >= cutoff:
        return 0
    try:
        data = stream.path.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.splitlines()
    kept = [line for line in lines if line and orjson.loads(line)["timestamp"] >= cutoff]
    temporary = stream.path.with_name(stream.path.name + ".expiring")
    temporary.write_bytes(b"".join(line + b"\n" for line in kept))
    with logs.lock:
        logs.forget(account, region, stream.function, stream.name)
        try:
            with open(stream.path, "rb") as f:
                f.seek(len(data))
                appended = f.read()  # lines written since it was read: recent, kept
        except FileNotFoundError:
            temporary.unlink(missing_ok=True)
            return 0
        if not kept and not appended:
            stream.path.unlink()
            temporary.unlink()
        else:
            with open(temporary, "ab") as f:
                f.write(appended)
            os.replace(temporary, stream.path)
    return len(lines) - len(kept)
