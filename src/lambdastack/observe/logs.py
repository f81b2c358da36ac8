"""Function logs, kept as Lambda keeps them: per function (log group) and environment (stream).

Each stream is a file of JSON lines, one log event per line (`{"timestamp": ms, "message":
text}`), under `<data_dir>/logs/<account>/<region>/<function>/<stream>.jsonl`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson

OPEN_FILES = 128


class LogStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: collections.OrderedDict[tuple[str, str, str, str], IO[bytes]] = collections.OrderedDict()
        # Held while a line is appended, and by whoever rewrites or removes a stream's file
        # (retention, DeleteLogGroup: observe/cloudwatch_logs), so that no line goes to a file
        # that is being replaced.
        self.lock = threading.Lock()
        # Sees the lines that may be embedded-format metrics (JSON with "_aws"): (account, region,
        # function, data, time in ms).
        self.metrics_tap: Callable[[str, str, str, bytes, int], None] | None = None

    def path(self, account: str, region: str, function: str, stream: str) -> Path:
        safe_stream = stream.replace("..", "__")
        return self.root / account / region / function / f"{safe_stream}.jsonl"

    def append(self, account: str, region: str, function: str, stream: str, data: bytes) -> None:
        if not data:
            return
        now = int(time.time() * 1000)
        if self.metrics_tap is not None and b'"_aws"' in data:
            self.metrics_tap(account, region, function, data, now)
        text = data.decode("utf-8", errors="replace")
        # One event per line, as Lambda splits output; a "\r" inside a line does not split it
        # (runtimes join a multi-line error record with "\r" to keep it one event).
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        out = b"".join(orjson.dumps({"timestamp": now, "message": line}) + b"\n" for line in lines)
        with self.lock:
            self._file((account, region, function, stream)).write(out)

    def forget(self, account: str, region: str, function: str, stream: str | None = None) -> None:
        """Close the open files of a function's streams (or of one stream); hold `lock` around this
        and the change to the files, the next append opens the file again."""
        for key in [k for k in self._files if k[:3] == (account, region, function) and stream in (None, k[3])]:
            self._files.pop(key).close()

    def _file(self, key: tuple[str, str, str, str]) -> IO[bytes]:
        f = self._files.get(key)
        if f is not None:
            self._files.move_to_end(key)
            return f
        path = self.path(*key)
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open across appends, closed on eviction
        self._files[key] = f
        if len(self._files) > OPEN_FILES:
            _, oldest = self._files.popitem(last=False)
            oldest.close()
        return f

    def read(self, account: str, region: str, function: str) -> list[dict[str, object]]:
        """Every event of a function's log group, oldest first."""
        folder = self.root / account / region / function
        events: list[dict[str, object]] = []
        for path in sorted(folder.rglob("*.jsonl")) if folder.exists() else ():
            stream = str(path.relative_to(folder))[: -len(".jsonl")]
            for line in path.read_bytes().splitlines():
                event = orjson.loads(line)
                event["logStreamName"] = stream
                events.append(event)
        events.sort(key=lambda e: e["timestamp"])  # type: ignore[arg-type,return-value]
        return events

    def close(self) -> None:
        with self.lock:
            self._close_all()

    def _close_all(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
