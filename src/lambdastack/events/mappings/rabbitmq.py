"""Consume a RabbitMQ queue for a mapping: Lambda's Amazon MQ for RabbitMQ, on any broker.

The mapping's EventSourceArn names a broker (`arn:aws:mq:<region>:<account>:broker:<name>:<id>`);
the server maps the name to a URL (`serve --mq-broker NAME=amqp://host:5672`). The user and
password come from the mapping's BASIC_AUTH secret (Secrets Manager on `--aws-endpoint-url`, a
JSON `{"username", "password"}` as Lambda reads it), else from the URL; VIRTUAL_HOST picks the
virtual host. Messages are taken with a prefetch of one batch; a batch (up to `BatchSize`,
gathered for `MaximumBatchingWindowInSeconds`, half a second if 0) reaches the function as
Lambda's `aws:rmq` event; each message is acknowledged only after the function succeeded, and
rejected back to the queue otherwise (it comes again, `redelivered`). With FilterCriteria, a
message whose record matches no pattern (its `data` read as JSON when it is JSON) is
acknowledged without invoking, as Lambda drops it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from lambdastack import errors

log = logging.getLogger("lambdastack.events.rabbitmq")

BACKOFF_S = 1.0
Invoke = Callable[[str, str | None, str, str, bytes], Awaitable[dict[str, Any]]]


@dataclass
class RabbitMapping:
    uuid: str
    broker_arn: str
    url: str  # with credentials and virtual host
    queue: str
    virtual_host: str
    function_name: str
    qualifier: str | None
    account: str
    region: str
    batch_size: int
    window_s: float
    filters: list[Callable[[Any], bool]] = field(default_factory=list)

    def wanted(self, record: dict[str, Any]) -> bool:
        """FilterCriteria, on the record with its `data` read as JSON when it is JSON."""
        if not self.filters:
            return True
        try:
            view = {**record, "data": orjson.loads(base64.b64decode(record["data"]))}
        except (ValueError, orjson.JSONDecodeError):
            view = record
        return any(matches(view) for matches in self.filters)


def broker_url(base: str, username: str | None, password: str | None, virtual_host: str) -> str:
    parts = urlsplit(base)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = username if username is not None else parts.username
    secret = password if password is not None else parts.password
    if user:
        netloc = f"{quote(user, safe='')}:{quote(secret or '', safe='')}@{netloc}"
    return urlunsplit((parts.scheme or "amqp", netloc, "/" + quote(virtual_host, safe=""), "", ""))


def _header(value: Any) -> Any:
    if isinstance(value, str):
        return {"bytes": list(value.encode())}
    if isinstance(value, bytes):
        return {"bytes": list(value)}
    if isinstance(value, dict):
        return {k: _header(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_header(v) for v in value]
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return value


def _expiration(value: Any) -> str | None:
    """AMQP's expiration, in milliseconds as text (aio-pika reads it as seconds)."""
    if isinstance(value, dt.timedelta):
        return str(int(value.total_seconds() * 1000))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value * 1000))
    return None


def record_of(message: AbstractIncomingMessage) -> dict[str, Any]:
    """A message as Lambda's RabbitMQ record: its basic properties, `redelivered`, base64 `data`."""
    stamp = message.timestamp
    return {
        "basicProperties": {
            "contentType": message.content_type, "contentEncoding": message.content_encoding,
            "headers": {k: _header(v) for k, v in (message.headers or {}).items()},
            "deliveryMode": int(message.delivery_mode or 1), "priority": message.priority,
            "correlationId": message.correlation_id, "replyTo": message.reply_to,
            "expiration": _expiration(message.expiration),
            "messageId": message.message_id,
            "timestamp": stamp.strftime("%b %-d, %Y, %-I:%M:%S %p") if isinstance(stamp, dt.datetime) else None,
            "type": message.type, "userId": message.user_id, "appId": message.app_id,
            "clusterId": message.cluster_id, "bodySize": len(message.body),
        },
        "redelivered": bool(message.redelivered),
        "data": base64.b64encode(message.body).decode(),
    }


class RabbitPoller:
    """One consumer of a mapping's queue; reconnects when the broker goes away."""

    def __init__(self, mapping: RabbitMapping, invoke: Invoke, report: Callable[[str], None]) -> None:
        self.mapping = mapping
        self.invoke = invoke
        self.report = report

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._consume(stop)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("mapping %s: consuming %s failed: %s", self.mapping.uuid, self.mapping.queue, e)
                self.report(f"PROBLEM: {type(e).__name__} while consuming the queue")
                await asyncio.sleep(BACKOFF_S)

    async def _consume(self, stop: asyncio.Event) -> None:
        mapping = self.mapping
        connection = await aio_pika.connect(mapping.url, timeout=10)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=mapping.batch_size)
            queue = await channel.get_queue(mapping.queue, ensure=True)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            tag = await queue.consume(inbox.put)
            try:
                while not stop.is_set():
                    batch = await self._collect(inbox, stop)
                    if batch:
                        await self._deliver(batch)
            finally:
                if not channel.is_closed:
                    await queue.cancel(tag)
                while not inbox.empty():  # taken but not delivered: back to the queue
                    await inbox.get_nowait().nack(requeue=True)
        finally:
            await connection.close()

    async def _collect(self, inbox: asyncio.Queue[AbstractIncomingMessage],
                       stop: asyncio.Event) -> list[AbstractIncomingMessage]:
        try:
            first = await asyncio.wait_for(inbox.get(), 1.0)  # a second at most, to see `stop`
        except TimeoutError:
            return []
        batch = [first]
        deadline = asyncio.get_running_loop().time() + (self.mapping.window_s or 0.5)
        while len(batch) < self.mapping.batch_size:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(inbox.get(), left))
            except TimeoutError:
                break
        return batch

    async def _deliver(self, batch: list[AbstractIncomingMessage]) -> None:
        mapping = self.mapping
        records = [record_of(m) for m in batch]
        wanted = [mapping.wanted(r) for r in records]
        if not any(wanted):  # all filtered out: acknowledged without invoking, as on Lambda
            await batch[-1].ack(multiple=True)
            return
        event = {
            "eventSource": "aws:rmq",
            "eventSourceArn": mapping.broker_arn,
            "rmqMessagesByQueue": {f"{mapping.queue}::{mapping.virtual_host}": [
                r for r, keep in zip(records, wanted, strict=True) if keep]},
        }
        try:
            result = await self.invoke(mapping.function_name, mapping.qualifier, mapping.account, mapping.region,
                                       orjson.dumps(event))
            failed = bool(result.get("FunctionError"))
            self.report("PROBLEM: Function call failed" if failed else "OK")
        except errors.LambdaError as e:
            failed = True
            self.report(f"PROBLEM: {e.code}")
        if failed:
            for message, keep in zip(batch, wanted, strict=True):
                await (message.nack(requeue=True) if keep else message.ack())
            await asyncio.sleep(BACKOFF_S)
            return
        await batch[-1].ack(multiple=True)
