"""Poll a stream for a mapping: each shard in order, checkpointed, with Lambda's failure handling.

As Lambda does it, per shard:
- records are read from the checkpoint (or the mapping's `StartingPosition` the first time),
  up to `BatchSize`, gathered for at most `MaximumBatchingWindowInSeconds`;
- a shard has one batch in flight at a time; with `ParallelizationFactor` N, a batch is split
  into N lanes by partition key, which run concurrently (order kept per key);
- a batch that could not be invoked (a throttle) is retried until its records grow too old;
- a failed batch is retried, blocking the shard, until it succeeds, its records grow older
  than `MaximumRecordAgeInSeconds`, or `MaximumRetryAttempts` retries failed; with
  `BisectBatchOnFunctionError` a failed batch is split in two first (not counted as a
  retry); with `ReportBatchItemFailures` the batch is retried from its lowest reported
  sequence number; what is given up is described to `DestinationConfig.OnFailure` (SQS or
  SNS) and skipped;
- the checkpoint (the last sequence number done with) is written after each batch, so a
  restart (also after `kill -9`) resumes after it: at least once, never a record skipped;
- with `TumblingWindowInSeconds`, batches carry a window's state, and the checkpoint moves
  when a window closes (events/mappings/stream_windows.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid as uuids
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.events.mappings.stream_sources import StreamRecord, StreamSource
from lambdastack.events.mappings.stream_windows import Window, WindowInvoker, split_by_window, too_large
from lambdastack.store.stream_checkpoints import CheckpointStore

log = logging.getLogger("lambdastack.events.streams")

POLL_IDLE_S = 0.25  # between reads of a shard with nothing new (Lambda polls a shard about 4 times a second)
RETRY_BACKOFF_S = 0.5
SHARDS_EVERY_S = 10.0  # how often the list of shards is read again (new shards after a reshard)
Invoke = Callable[[str, str | None, str, str, bytes], Awaitable[dict[str, Any]]]
Send = Callable[[str, str], Awaitable[None]]  # (destination ARN, record JSON)


@dataclass
class StreamMapping:
    uuid: str
    function_name: str
    qualifier: str | None
    function_arn: str
    account: str
    region: str
    position: str  # TRIM_HORIZON | LATEST | AT_TIMESTAMP
    position_at: float | None  # AT_TIMESTAMP's time; for LATEST on Kinesis, when the mapping was made
    batch_size: int
    window_s: float
    parallelization: int
    max_retries: int  # -1: until the records expire
    max_age_s: int  # -1: no limit
    bisect: bool
    report_failures: bool
    on_failure: str | None
    filters: list[Callable[[Any], bool]] = field(default_factory=list)
    tumbling_s: int = 0  # TumblingWindowInSeconds (events/mappings/stream_windows.py)

    def wanted(self, record: dict[str, Any]) -> bool:
        if not self.filters:
            return True
        view = record
        if "kinesis" in record:  # Kinesis data is matched as the JSON it holds, when it is JSON
            import base64
            try:
                view = {**record, "data": orjson.loads(base64.b64decode(record["kinesis"]["data"]))}
            except (ValueError, orjson.JSONDecodeError):
                view = record
        return any(matches(view) for matches in self.filters)


@dataclass
class _Outcome:
    ok: bool
    retry_from: int | None = None  # index of the first record to retry (partial batch response)
    status: int = 200
    function_error: str | None = None
    executed_version: str = "$LATEST"
    invoked: bool = True  # False: throttled, or the function could not be invoked (retried, not counted)


class StreamPoller:
    """All the shards of one mapping's stream."""

    def __init__(self, mapping: StreamMapping, source: StreamSource, checkpoints: CheckpointStore,
                 executor: Executor, invoke: Invoke, send: Send, report: Callable[[str], None],
                 iterator_age: Callable[[StreamMapping, float], None] | None = None) -> None:
        """`iterator_age`: told the age (ms) of the last record of each batch as it is invoked (IteratorAge)."""
        self.mapping = mapping
        self.iterator_age = iterator_age
        self.source = source
        self.checkpoints = checkpoints
        self.executor = executor
        self.invoke = invoke
        self.send = send
        self.report = report
        self._shards: dict[str, asyncio.Task[None]] = {}
        self._windows: dict[str, Window] = {}  # the open tumbling window of each shard

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    for shard in await self._call(self.source.shards):
                        if shard not in self._shards:
                            self._shards[shard] = asyncio.ensure_future(self._shard(shard, stop))
                except Exception as e:
                    log.warning("mapping %s: listing shards of %s failed: %s", self.mapping.uuid,
                                self.source.arn.arn, e)
                    self.report(f"PROBLEM: {type(e).__name__} while reading the stream")
                try:
                    await asyncio.wait_for(stop.wait(), SHARDS_EVERY_S)
                except TimeoutError:
                    pass
        finally:
            await asyncio.gather(*self._shards.values(), return_exceptions=True)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # ------------------------------------------------------------------ one shard

    async def _shard(self, shard: str, stop: asyncio.Event) -> None:
        mapping = self.mapping
        iterator: str | None = None
        while not stop.is_set():
            try:
                if iterator is None:
                    after = await self._call(self.checkpoints.get, mapping.uuid, shard)
                    at = mapping.position_at if mapping.position in ("AT_TIMESTAMP", "LATEST") else None
                    iterator = await self._call(self.source.iterator, shard, mapping.position, after, at)
                    if iterator is None:
                        return  # a closed shard, read to its end
                records, iterator = await self._collect(shard, iterator, stop)
                if mapping.tumbling_s:
                    if not await self._windowed(shard, records, stop):
                        iterator = None  # stopped mid-window: start again from the checkpoint
                        self._windows.pop(shard, None)
                        continue
                elif records:
                    done = await self._settle(shard, records, stop)
                    if not done:
                        iterator = None  # stopped mid-batch: start again from the checkpoint
                        continue
                    await self._call(self.checkpoints.put, mapping.uuid, shard, records[-1].sequence)
                if iterator is None:
                    return  # the shard was closed and is read to its end
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("mapping %s: reading %s failed: %s", mapping.uuid, shard, e)
                self.report(f"PROBLEM: {type(e).__name__} while reading the stream")
                iterator = None
                await _sleep(stop, RETRY_BACKOFF_S * 2)

    async def _collect(self, shard: str, iterator: str,
                       stop: asyncio.Event) -> tuple[list[StreamRecord], str | None]:
        mapping = self.mapping
        batch: list[StreamRecord] = []
        deadline: float | None = None
        next_iterator: str | None = iterator
        while next_iterator is not None and len(batch) < mapping.batch_size and not stop.is_set():
            read, next_iterator = await self._call(self.source.read, shard, next_iterator,
                                                   mapping.batch_size - len(batch))
            batch += read
            if batch and deadline is None:
                deadline = time.monotonic() + mapping.window_s
            if batch and (deadline is None or time.monotonic() >= deadline):
                break
            if not read and not batch:
                await _sleep(stop, POLL_IDLE_S)
                break  # nothing new: the caller decides (a tumbling window may be over)
            if not read:
                await _sleep(stop, min(POLL_IDLE_S, max(0.0, (deadline or 0) - time.monotonic())))
        return batch, next_iterator

    async def _settle(self, shard: str, records: list[StreamRecord], stop: asyncio.Event) -> bool:
        """Process a batch to the end (done, or given up); False if stopped before that."""
        mapping = self.mapping
        wanted = [r for r in records if mapping.wanted(r.record)]  # filtered out: skipped, as on Lambda
        if not wanted:
            return True
        lanes: dict[int, list[StreamRecord]] = {}
        for record in wanted:
            lane = zlib.crc32(record.partition_key.encode()) % mapping.parallelization
            lanes.setdefault(lane, []).append(record)
        results = await asyncio.gather(*(self._lane(shard, lane, stop) for lane in lanes.values()))
        return all(results)

    async def _lane(self, shard: str, records: list[StreamRecord], stop: asyncio.Event) -> bool:
        mapping = self.mapping
        pending: list[tuple[list[StreamRecord], int]] = [(records, 0)]  # (batch, retries spent)
        while pending:
            if stop.is_set():
                return False
            batch, retries = pending.pop(0)
            batch = await self._unexpired(shard, batch, retries)
            if not batch:
                continue
            outcome = await self._invoke(batch)
            if outcome.ok:
                self.report("OK")
                continue
            self.report("PROBLEM: Function call failed")
            if not outcome.invoked:  # as on Lambda: retried until the records expire
                pending.insert(0, (batch, retries))
                await _sleep(stop, RETRY_BACKOFF_S)
                continue
            if outcome.retry_from is not None:
                batch = batch[outcome.retry_from:]
            if mapping.bisect and len(batch) > 1:
                half = len(batch) // 2
                pending[:0] = [(batch[:half], retries), (batch[half:], retries)]
                continue
            if 0 <= mapping.max_retries <= retries:
                await self._give_up(shard, batch, "RetryAttemptsExhausted", retries + 1, outcome)
                continue
            pending.insert(0, (batch, retries + 1))
            await _sleep(stop, RETRY_BACKOFF_S)
        return True

    # ------------------------------------------------------------------ tumbling windows

    async def _windowed(self, shard: str, records: list[StreamRecord], stop: asyncio.Event) -> bool:
        """Records into their windows; windows that are over closed. False if stopped before the end."""
        mapping = self.mapping
        invoker = WindowInvoker(self._invoke_payload, shard, self.source.arn.arn)
        for start, run in split_by_window(records, mapping.tumbling_s):
            window = self._windows.get(shard)
            if window is not None and window.start != start:
                if not await self._close(shard, window, invoker, stop):
                    return False
                window = None
            if window is None:
                window = self._windows[shard] = Window(start, start + mapping.tumbling_s)
            wanted = [r for r in run if mapping.wanted(r.record)]
            if wanted and not await self._window_batch(shard, window, wanted, invoker, stop):
                return False
            window.last_sequence = run[-1].sequence
            if too_large(window.state):  # ends early; the same window goes on with a fresh state
                if not await self._close(shard, window, invoker, stop, early=True):
                    return False
                self._windows[shard] = Window(window.start, window.end)
        window = self._windows.get(shard)
        if window is not None and not records and time.time() >= window.end:  # caught up, and it is over
            return await self._close(shard, window, invoker, stop)
        return True

    async def _close(self, shard: str, window: Window, invoker: WindowInvoker, stop: asyncio.Event,
                     early: bool = False) -> bool:
        if not await self._window_batch(shard, window, [], invoker, stop, final=True, early=early):
            return False
        if window.last_sequence is not None:
            await self._call(self.checkpoints.put, self.mapping.uuid, shard, window.last_sequence)
        self._windows.pop(shard, None)
        return True

    async def _window_batch(self, shard: str, window: Window, records: list[StreamRecord], invoker: WindowInvoker,
                            stop: asyncio.Event, final: bool = False, early: bool = False) -> bool:
        """Invoke until it succeeds or is given up (the window's state then as it was); False if stopped."""
        mapping = self.mapping
        retries = 0
        while not stop.is_set():
            if records:
                records = await self._unexpired(shard, records, retries)
                if not records:
                    return True
            state, result = await invoker(window, records, final=final, early=early)
            if state is not None:
                window.state = state
                self.report("OK")
                return True
            self.report("PROBLEM: Function call failed")
            error = result.get("error")
            if isinstance(error, errors.LambdaError):  # not invoked: retried, not counted
                await _sleep(stop, RETRY_BACKOFF_S)
                continue
            if 0 <= mapping.max_retries <= retries:
                if records:
                    outcome = _Outcome(False, function_error=str(result.get("FunctionError") or "Unhandled"),
                                       executed_version=str(result.get("ExecutedVersion") or "$LATEST"))
                    await self._give_up(shard, records, "RetryAttemptsExhausted", retries + 1, outcome)
                return True
            retries += 1
            await _sleep(stop, RETRY_BACKOFF_S)
        return False

    async def _unexpired(self, shard: str, records: list[StreamRecord], retries: int) -> list[StreamRecord]:
        """The records not older than MaximumRecordAgeInSeconds; the others are given up."""
        if self.mapping.max_age_s < 0:
            return records
        oldest_allowed = time.time() - self.mapping.max_age_s
        expired = [r for r in records if r.arrival < oldest_allowed]
        if expired:
            await self._give_up(shard, expired, "RecordAgeExceeded", retries, None)
        return [r for r in records if r.arrival >= oldest_allowed]

    async def _invoke_payload(self, payload: bytes) -> dict[str, Any]:
        mapping = self.mapping
        return await self.invoke(mapping.function_name, mapping.qualifier, mapping.account, mapping.region, payload)

    # ------------------------------------------------------------------ invoking

    async def _invoke(self, batch: list[StreamRecord]) -> _Outcome:
        mapping = self.mapping
        payload = orjson.dumps({"Records": [r.record for r in batch]})
        if self.iterator_age is not None and batch:
            self.iterator_age(mapping, max(0.0, (time.time() - batch[-1].arrival) * 1000.0))
        try:
            result = await self.invoke(mapping.function_name, mapping.qualifier, mapping.account, mapping.region,
                                       payload)
        except errors.LambdaError as e:
            return _Outcome(False, status=e.status, function_error=e.code, invoked=False)
        version = str(result.get("ExecutedVersion") or "$LATEST")
        if result.get("FunctionError"):
            return _Outcome(False, function_error=str(result["FunctionError"]), executed_version=version)
        if not mapping.report_failures:
            return _Outcome(True, executed_version=version)
        retry_from = _retry_from(result.get("Payload", b""), batch)
        if retry_from is None:
            return _Outcome(True, executed_version=version)
        return _Outcome(False, retry_from=max(retry_from, 0), executed_version=version,
                        function_error=None if retry_from >= 0 else "Unhandled")

    async def _give_up(self, shard: str, batch: list[StreamRecord], condition: str, invokes: int,
                       outcome: _Outcome | None) -> None:
        mapping = self.mapping
        log.warning("mapping %s: %d records of %s skipped (%s)", mapping.uuid, len(batch), shard, condition)
        if not mapping.on_failure:
            return
        record: dict[str, Any] = {
            "requestContext": {"requestId": str(uuids.uuid4()), "functionArn": mapping.function_arn,
                               "condition": condition, "approximateInvokeCount": invokes},
            "responseContext": {"statusCode": outcome.status if outcome else 0,
                                "executedVersion": outcome.executed_version if outcome else "",
                                "functionError": (outcome.function_error or "") if outcome else ""},
            "version": "1.0",
            "timestamp": _iso(time.time()),
            self.source.arn.batch_info_key: {
                "shardId": shard,
                "startSequenceNumber": batch[0].sequence,
                "endSequenceNumber": batch[-1].sequence,
                "approximateArrivalOfFirstRecord": _iso(batch[0].arrival),
                "approximateArrivalOfLastRecord": _iso(batch[-1].arrival),
                "batchSize": len(batch),
                "streamArn": self.source.arn.arn,
            },
        }
        try:
            await self.send(mapping.on_failure, orjson.dumps(record).decode())
        except Exception as e:
            log.warning("mapping %s: the on-failure destination %s refused the record: %s", mapping.uuid,
                        mapping.on_failure, e)


def _retry_from(answer: bytes, batch: list[StreamRecord]) -> int | None:
    """From a partial batch response: None (all done), the index to retry from, or -1 (all failed)."""
    try:
        document = orjson.loads(answer) if answer.strip() else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    failures = document.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        return -1
    index = {r.sequence: i for i, r in enumerate(batch)}
    lowest: int | None = None
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in index:
            return -1  # an empty, null or unknown identifier fails the whole batch
        lowest = index[item] if lowest is None else min(lowest, index[item])
    return lowest


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(epoch_s * 1000) % 1000:03d}Z"


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
