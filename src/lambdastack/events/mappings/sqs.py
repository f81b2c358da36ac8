"""Poll an SQS queue for a mapping: batches of messages in, the function invoked, the batch deleted.

As Lambda does it:
- a batch is up to `BatchSize` messages, gathered for at most `MaximumBatchingWindowInSeconds`
  (with a window of 0, whatever one receive brings);
- messages are deleted only after the function succeeded; on a function error, a throttle or
  a failure to invoke, nothing is deleted, and the queue's visibility timeout brings them back
  (and its redrive policy moves a poison message to its dead-letter queue);
- with FilterCriteria, a message matches when any pattern matches its record (the body read
  as JSON when it is JSON); a message that matches none is deleted without invoking;
- with `ReportBatchItemFailures`, an answer `{"batchItemFailures": [{"itemIdentifier": id}]}`
  keeps just those messages; an answer naming an id that is not in the batch fails the batch.
Receives long-poll for at most a second, so a disabled mapping stops within a second; what
was received is still delivered first.

A FIFO queue keeps a message group's order by handing out none of the group's messages while
some are in flight. The pollers of a FIFO mapping take turns to receive, so that order holds
also with servers that check that without a lock across concurrent receives (moto does); the
batches themselves still run concurrently, one per message group at most. While some of the
mapping's batches are in flight, a turn does not long-poll (what frees a group is our own
delete, which a long poll may not see until it ends): it receives what is there, and an
empty turn waits FIFO_RETRY_S outside the turn.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.invoke.destination_arn import DestinationArn
from lambdastack.invoke.destinations import AwsClients

log = logging.getLogger("lambdastack.events.sqs")

RECEIVE_MAX = 10  # what one ReceiveMessage may return
POLL_WAIT_S = 1  # long polling, short enough to stop within a second
BACKOFF_S = 1.0
FIFO_RETRY_S = 0.05
Invoke = Callable[[str, str | None, str, str, bytes], Awaitable[dict[str, Any]]]


@dataclass
class SqsMapping:
    uuid: str
    queue: DestinationArn
    function_name: str
    qualifier: str | None
    account: str
    region: str
    batch_size: int
    window_s: float
    report_failures: bool
    filters: list[Callable[[Any], bool]] = field(default_factory=list)
    # Shared by the mapping's pollers: for a FIFO queue, one receive at a time (see above).
    receiving: asyncio.Lock | None = None
    in_flight: int = 0  # batches received and not yet settled, across the mapping's pollers
    # Receives that found nothing and that brought messages, across the pollers (read by scaling).
    empty_receives: int = 0
    full_receives: int = 0

    def __post_init__(self) -> None:
        if self.receiving is None and self.queue.resource.endswith(".fifo"):
            self.receiving = asyncio.Lock()

    def wanted(self, record: dict[str, Any]) -> bool:
        if not self.filters:
            return True
        body = record["body"]
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = body
        view = {**record, "body": parsed}
        return any(matches(view) for matches in self.filters)


def record_of(message: dict[str, Any], queue: DestinationArn) -> dict[str, Any]:
    """A message as Lambda's `aws:sqs` record."""
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            out["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            out["binaryValue"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        attributes[name] = out
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": queue.region,
    }


def kept_by_answer(answer: bytes, message_ids: set[str]) -> set[str] | None:
    """The ids a ReportBatchItemFailures answer keeps in the queue; None: the whole batch failed."""
    try:
        document = orjson.loads(answer) if answer.strip() else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("batchItemFailures") is None:
        return set()  # no failures reported: all succeeded
    failures = document["batchItemFailures"]
    if not isinstance(failures, list):
        return None
    kept: set[str] = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in message_ids:
            return None
        kept.add(item)
    return kept


class SqsPoller:
    """One poll loop of a mapping (a mapping runs several, up to its concurrency)."""

    def __init__(self, mapping: SqsMapping, aws: AwsClients, executor: Executor, invoke: Invoke,
                 report: Callable[[str], None]) -> None:
        self.mapping = mapping
        self.aws = aws
        self.executor = executor
        self.invoke = invoke
        self.report = report  # LastProcessingResult
        self._url: str | None = None

    async def _queue_url(self) -> str:
        """The queue's URL, asked of the endpoint once per poller (GetQueueUrl)."""
        if self._url is None:
            self._url = await self._call(self.aws.queue_url, target=self.mapping.queue)
        return self._url

    async def run(self, stop: asyncio.Event, extra: bool = False) -> None:
        """Poll until `stop`; an `extra` poller (added for a backlog) also ends at an empty receive."""
        while not stop.is_set():
            try:
                batch = await self._collect(stop, extra)
                if not batch and extra:
                    return
                if batch:
                    self.mapping.in_flight += 1
                    try:
                        await self._deliver(batch)
                    finally:
                        self.mapping.in_flight -= 1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("mapping %s: polling %s failed: %s", self.mapping.uuid, self.mapping.queue.arn, e)
                self.report(f"PROBLEM: {type(e).__name__} while polling the queue")
                await asyncio.sleep(BACKOFF_S)

    async def _call(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(**kwargs))

    async def _collect(self, stop: asyncio.Event, extra: bool = False) -> list[dict[str, Any]]:
        mapping = self.mapping
        client = self.aws.client("sqs", mapping.queue.region)
        url = await self._queue_url()
        batch: list[dict[str, Any]] = []
        deadline = time.monotonic() + mapping.window_s
        while len(batch) < mapping.batch_size:
            left = deadline - time.monotonic()
            wait = POLL_WAIT_S if not batch else max(0, min(POLL_WAIT_S, int(left)))
            wanted = min(RECEIVE_MAX, mapping.batch_size - len(batch))
            batch += await self._receive(client, url, wanted, wait)
            if batch and (mapping.window_s <= 0 or time.monotonic() >= deadline):
                break
            if not batch and (stop.is_set() or extra):
                break
            if not batch:
                deadline = time.monotonic() + mapping.window_s  # the window opens with the first message
        return batch

    async def _receive(self, client: Any, url: str, wanted: int, wait: int) -> list[dict[str, Any]]:
        receive = functools.partial(self._call, client.receive_message, QueueUrl=url, MaxNumberOfMessages=wanted,
                                    AttributeNames=["All"], MessageAttributeNames=["All"])
        turn = self.mapping.receiving
        busy = False
        if turn is None:
            response = await receive(WaitTimeSeconds=wait)
        else:
            async with turn:
                busy = self.mapping.in_flight > 0
                response = await receive(WaitTimeSeconds=0 if busy else wait)
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if messages:
            self.mapping.full_receives += 1
        else:
            self.mapping.empty_receives += 1
            if busy:
                await asyncio.sleep(FIFO_RETRY_S)
        return messages

    async def _deliver(self, received: list[dict[str, Any]]) -> None:
        mapping = self.mapping
        records = [record_of(m, mapping.queue) for m in received]
        wanted = [mapping.wanted(r) for r in records]
        batch = [m for m, keep in zip(received, wanted, strict=True) if keep]
        if len(batch) < len(received):  # filtered out: deleted without invoking, as on Lambda
            await self._delete([m for m, keep in zip(received, wanted, strict=True) if not keep])
        if not batch:
            return
        payload = orjson.dumps({"Records": [r for r, keep in zip(records, wanted, strict=True) if keep]})
        try:
            result = await self.invoke(mapping.function_name, mapping.qualifier, mapping.account, mapping.region,
                                       payload)
        except errors.LambdaError as e:
            self.report(f"PROBLEM: {e.code}")
            await asyncio.sleep(BACKOFF_S)  # throttled or not ready: the messages come back later
            return
        if result.get("FunctionError"):
            self.report("PROBLEM: Function call failed")
            return
        ids = {m["MessageId"] for m in batch}
        kept = kept_by_answer(result.get("Payload", b""), ids) if mapping.report_failures else set()
        if kept is None:
            self.report("PROBLEM: Function call failed")
            return
        done = [m for m in batch if m["MessageId"] not in kept]
        await self._delete(done)
        self.report("OK")

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        client = self.aws.client("sqs", self.mapping.queue.region)
        url = await self._queue_url()
        for start in range(0, len(messages), RECEIVE_MAX):
            chunk = messages[start:start + RECEIVE_MAX]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            await self._call(client.delete_message_batch, QueueUrl=url, Entries=entries)
