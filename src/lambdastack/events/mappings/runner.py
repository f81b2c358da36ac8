"""Run each enabled event source mapping's pollers; follow the mappings as they change.

A change (create, update, delete; and at start-up, every mapping) is reconciled in order per
mapping: the pollers that run stop (each finishes the batch it holds), pollers for the new
settings start if the mapping is enabled, and the control plane records the settled state
(`Enabled` or `Disabled`). A RabbitMQ mapping has one consumer (events/mappings/rabbitmq.py); a
stream mapping reads each shard of its stream (events/mappings/streams.py).
An SQS mapping's pollers follow its backlog (events/mappings/scaling.py), up to
`ScalingConfig.MaximumConcurrency` and at most MAX_POLLERS here; each poller has one batch in
flight at a time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuids
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from lambdastack.control.event_source_mappings import MQ_DEFAULT_WINDOW_S, EventSourceMappingService
from lambdastack.control.stream_settings import StreamArn, parse_stream_arn
from lambdastack.events.mappings.rabbitmq import RabbitMapping, RabbitPoller, broker_url
from lambdastack.events.mappings.scaling import SqsScaling
from lambdastack.events.mappings.sqs import SqsMapping, SqsPoller
from lambdastack.events.mappings.stream_sources import DynamoDbStreamSource, KinesisSource, StreamSource
from lambdastack.events.mappings.streams import StreamMapping, StreamPoller
from lambdastack.invoke.destination_arn import parse_destination
from lambdastack.invoke.destinations import AwsClients
from lambdastack.invoke.service import InvokeService
from lambdastack.observe.cloudwatch_metrics.recorder import ITERATOR_AGE
from lambdastack.patterns import compile_pattern
from lambdastack.store.event_source_mappings import MappingRecord
from lambdastack.store.stream_checkpoints import CheckpointStore

log = logging.getLogger("lambdastack.events.mappings")

INITIAL_POLLERS = 5  # as Lambda starts an SQS mapping
MAX_POLLERS = 16  # the most concurrent batches of one mapping here (MaximumConcurrency or not)
ControlCall = Callable[..., Awaitable[Any]]


@dataclass
class _Caller:
    request_id: str
    account: str
    region: str


@dataclass
class _Running:
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class MappingRunner:
    def __init__(self, mappings: EventSourceMappingService, invoker: InvokeService, aws_endpoint_url: str | None,
                 control: ControlCall, checkpoints: CheckpointStore) -> None:
        self.mappings = mappings
        self.checkpoints = checkpoints
        self.invoker = invoker
        self.aws = AwsClients(aws_endpoint_url)
        self.control = control  # runs a control-plane call on the control thread
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="mapping-poll")
        self._running: dict[str, _Running] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._functions: dict[str, tuple[str, str, str]] = {}  # uuid -> the function its pollers invoke
        mappings.on_change(self._changed)
        mappings.on_function_deleted(self._function_deleted)
        mappings.live = lambda uuid: self._status.get(uuid, {"LastProcessingResult": "No records processed"})

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for record in await self.control(self.mappings.all):
            await self._reconcile(record.uuid)

    async def stop(self) -> None:
        uuids_running = list(self._running)
        for uuid in uuids_running:
            await self._stop(uuid)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _changed(self, uuid: str) -> None:
        """From the control thread: reconcile the mapping on the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._reconcile(uuid)))

    def _function_deleted(self, account: str, region: str, name: str) -> None:
        for uuid, function in list(self._functions.items()):
            if function == (account, region, name):
                self._changed(uuid)

    async def _reconcile(self, uuid: str) -> None:
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        async with lock:
            await self._stop(uuid)
            record: MappingRecord | None = await self.control(self.mappings.mappings.get, uuid)
            if record is None:
                self._status.pop(uuid, None)
                self._locks.pop(uuid, None)
                return
            enabled = bool(record.document.get("Enabled", True))
            if enabled:
                await self._start(record)
            await self.control(self.mappings.settle, uuid, enabled)

    async def _start(self, record: MappingRecord) -> None:
        document = record.document
        self._status.setdefault(record.uuid, {"LastProcessingResult": "No records processed"})

        def report(result: str) -> None:
            self._status[record.uuid] = {"LastProcessingResult": result}

        running = _Running(asyncio.Event())
        self._functions[record.uuid] = (record.account, record.region, record.function_name)
        qualifier = document.get("Qualifier") or None
        stream = parse_stream_arn(document["EventSourceArn"])
        if stream is not None:
            poller = await self._stream_poller(record, stream, report)
            running.tasks.append(asyncio.ensure_future(poller.run(running.stop)))
            self._running[record.uuid] = running
            return
        if ":mq:" in document["EventSourceArn"]:
            mapping = await self._rabbit_mapping(record)
            if mapping is None:
                return
            running.tasks.append(asyncio.ensure_future(RabbitPoller(mapping, self._invoke, report).run(running.stop)))
            self._running[record.uuid] = running
            return
        queue = parse_destination(document["EventSourceArn"])
        if queue is None:
            log.warning("mapping %s: cannot read its source %s", record.uuid, document["EventSourceArn"])
            return
        sqs = SqsMapping(
            uuid=record.uuid, queue=queue, function_name=record.function_name, qualifier=qualifier,
            account=record.account, region=record.region, batch_size=int(document["BatchSize"]),
            window_s=float(document["MaximumBatchingWindowInSeconds"]),
            report_failures="ReportBatchItemFailures" in (document.get("FunctionResponseTypes") or []),
            filters=[compile_pattern(orjson.loads(f["Pattern"]))
                     for f in (document.get("FilterCriteria") or {}).get("Filters", [])],
        )
        most = min(int((document.get("ScalingConfig") or {}).get("MaximumConcurrency") or MAX_POLLERS), MAX_POLLERS)
        scaling = SqsScaling(sqs, lambda: SqsPoller(sqs, self.aws, self._executor, self._invoke, report),
                             base=INITIAL_POLLERS, most=most)
        running.tasks.append(asyncio.ensure_future(scaling.run(running.stop)))
        self._running[record.uuid] = running

    async def _stream_poller(self, record: MappingRecord, stream: StreamArn,
                             report: Callable[[str], None]) -> StreamPoller:
        document = record.document
        qualifier = document.get("Qualifier") or None
        position = document["StartingPosition"]
        at = document.get("StartingPositionTimestamp")
        if position == "LATEST" and stream.service == "kinesis":
            at = document.get("Created", document["LastModified"])  # records put from then on, also after a restart
        mapping = StreamMapping(
            uuid=record.uuid, function_name=record.function_name, qualifier=qualifier,
            function_arn=document["FunctionArn"], account=record.account, region=record.region,
            position=position, position_at=at, batch_size=int(document["BatchSize"]),
            window_s=float(document["MaximumBatchingWindowInSeconds"]),
            parallelization=int(document.get("ParallelizationFactor") or 1),
            max_retries=int(document.get("MaximumRetryAttempts", -1)),
            max_age_s=int(document.get("MaximumRecordAgeInSeconds", -1)),
            bisect=bool(document.get("BisectBatchOnFunctionError")),
            report_failures="ReportBatchItemFailures" in (document.get("FunctionResponseTypes") or []),
            on_failure=((document.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
            filters=[compile_pattern(orjson.loads(f["Pattern"]))
                     for f in (document.get("FilterCriteria") or {}).get("Filters", [])],
            tumbling_s=int(document.get("TumblingWindowInSeconds") or 0),
        )
        source: StreamSource
        if stream.service == "kinesis":
            source = KinesisSource(stream, self.aws, await self._role(record, qualifier))
        else:
            source = DynamoDbStreamSource(stream, self.aws)
        return StreamPoller(mapping, source, self.checkpoints, self._executor, self._invoke, self._send, report,
                            self._iterator_age)

    def _iterator_age(self, mapping: StreamMapping, age_ms: float) -> None:
        recorder = self.invoker.recorder
        if recorder is not None:
            resource = f"{mapping.function_name}:{mapping.qualifier}" if mapping.qualifier else None
            recorder.event(ITERATOR_AGE, mapping.account, mapping.region, mapping.function_name, resource, age_ms)

    async def _role(self, record: MappingRecord, qualifier: str | None) -> str:
        """The function's execution role: Kinesis records name it (`invokeIdentityArn`)."""
        try:
            target = self.invoker.resolver.resolve(record.function_name, qualifier, record.account, record.region)
        except Exception:
            return ""
        return str(target.version.config.get("Role", ""))

    async def _send(self, destination: str, record: str) -> None:
        target = parse_destination(destination)
        if target is None:
            raise ValueError(f"{destination} is not a destination")
        client = self.aws.client(target.service, target.region)
        loop = asyncio.get_running_loop()
        if target.service == "sqs":
            url = await loop.run_in_executor(self._executor, self.aws.queue_url, target)
            await loop.run_in_executor(self._executor, lambda: client.send_message(QueueUrl=url, MessageBody=record))
        else:
            await loop.run_in_executor(self._executor, lambda: client.publish(TopicArn=target.arn, Message=record))

    async def _rabbit_mapping(self, record: MappingRecord) -> RabbitMapping | None:
        document = record.document
        arn = document["EventSourceArn"]
        base = self.mappings.brokers.get(arn.split(":")[6] if len(arn.split(":")) > 6 else "")
        if base is None:
            self._status[record.uuid] = {"LastProcessingResult": "PROBLEM: the broker is not known to this server"}
            return None
        access = {c["Type"]: c["URI"] for c in document.get("SourceAccessConfigurations") or []}
        username = password = None
        secret = access.get("BASIC_AUTH")
        if secret and self.aws.endpoint_url:
            try:
                username, password = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._credentials, secret)
            except Exception as e:
                log.warning("mapping %s: the secret %s could not be read (%s); the broker URL's user is used",
                            record.uuid, secret, e)
        virtual_host = access.get("VIRTUAL_HOST") or "/"
        return RabbitMapping(
            uuid=record.uuid, broker_arn=arn, url=broker_url(base, username, password, virtual_host),
            queue=document["Queues"][0], virtual_host=virtual_host, function_name=record.function_name,
            qualifier=document.get("Qualifier") or None, account=record.account, region=record.region,
            batch_size=int(document["BatchSize"]),
            window_s=float(document["MaximumBatchingWindowInSeconds"]) or MQ_DEFAULT_WINDOW_S,
            filters=[compile_pattern(orjson.loads(f["Pattern"]))
                     for f in (document.get("FilterCriteria") or {}).get("Filters", [])],
        )

    def _credentials(self, secret_arn: str) -> tuple[str | None, str | None]:
        """The user and password of a BASIC_AUTH secret, as Lambda reads it: JSON username/password."""
        region = secret_arn.split(":")[3] if secret_arn.count(":") >= 3 else "us-east-1"
        value = self.aws.client("secretsmanager", region).get_secret_value(SecretId=secret_arn)["SecretString"]
        document = orjson.loads(value)
        return document.get("username"), document.get("password")

    async def _stop(self, uuid: str) -> None:
        running = self._running.pop(uuid, None)
        self._functions.pop(uuid, None)
        if running is None:
            return
        running.stop.set()
        await asyncio.gather(*running.tasks, return_exceptions=True)

    async def _invoke(self, name: str, qualifier: str | None, account: str, region: str,
                      payload: bytes) -> dict[str, Any]:
        caller = _Caller(str(uuids.uuid4()), account, region)
        return await self.invoker.invoke(caller, {"FunctionName": name, "Qualifier": qualifier, "Payload": payload})
