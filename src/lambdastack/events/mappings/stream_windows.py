"""Tumbling windows on a stream mapping (`TumblingWindowInSeconds`): state across invocations.

As Lambda does it: each record belongs to the window its arrival time falls in (windows of
the configured length, aligned to the epoch). The records of a window reach the function in
one or more batches, each event carrying the window (`window.start`, `window.end`), the
`state` the previous invocation of that window returned, `shardId` and `eventSourceARN`. An
answer without a `state` object is a failed invocation. When the window is over (its end
has passed, or a record of a later window arrived), a final invocation carries
`isFinalInvokeForWindow: true`, no records and the last state; after it succeeded the shard
is checkpointed past the window and the next window starts with a fresh state. A state over
1 MB ends the window early (`isWindowTerminatedEarly: true` on that final invocation), and
the same window goes on with a fresh state. A failed invocation is retried like any batch
(`MaximumRetryAttempts`, `MaximumRecordAgeInSeconds`, the on-failure destination); a restart
replays an unfinished window from its checkpoint, from a fresh state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.events.mappings.stream_sources import StreamRecord

MAX_STATE_BYTES = 1024 * 1024
Invoke = Callable[[bytes], Awaitable[dict[str, Any]]]


@dataclass
class Window:
    start: int  # epoch seconds
    end: int
    state: dict[str, Any] = field(default_factory=dict)
    last_sequence: str | None = None  # the last record of the window processed so far


def window_of(record: StreamRecord, length_s: int) -> int:
    return int(record.arrival // length_s) * length_s


def split_by_window(records: list[StreamRecord], length_s: int) -> list[tuple[int, list[StreamRecord]]]:
    """Consecutive runs of records in the same window, in order."""
    runs: list[tuple[int, list[StreamRecord]]] = []
    for record in records:
        start = window_of(record, length_s)
        if runs and runs[-1][0] == start:
            runs[-1][1].append(record)
        else:
            runs.append((start, [record]))
    return runs


class WindowInvoker:
    """Builds a windowed event, invokes, and reads the answer's state."""

    def __init__(self, invoke: Invoke, shard: str, source_arn: str) -> None:
        self.invoke = invoke
        self.shard = shard
        self.source_arn = source_arn

    async def __call__(self, window: Window, records: list[StreamRecord], *, final: bool = False,
                       early: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(the new state, or None if the invocation failed; what Invoke returned)."""
        event = {
            "Records": [r.record for r in records],
            "window": {"start": _iso(window.start), "end": _iso(window.end)},
            "state": window.state,
            "shardId": self.shard,
            "eventSourceARN": self.source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }
        try:
            result = await self.invoke(orjson.dumps(event))
        except errors.LambdaError as e:
            return None, {"error": e}
        if result.get("FunctionError"):
            return None, result
        try:
            answer = orjson.loads(result.get("Payload") or b"null")
        except orjson.JSONDecodeError:
            return None, result
        state = answer.get("state") if isinstance(answer, dict) else None
        if not isinstance(state, dict):
            return None, result  # Lambda: an answer without a state is a failed invocation
        return state, result


def too_large(state: dict[str, Any]) -> bool:
    return len(orjson.dumps(state)) > MAX_STATE_BYTES


def _iso(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
