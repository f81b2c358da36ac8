"""Sending records and dead letters to where the user asked: SQS, SNS, EventBridge, S3, Lambda.

AWS services are reached with boto3 through an AWS-compatible endpoint (`serve
--aws-endpoint-url`; without it, boto3's own endpoints and credentials). boto3 blocks, so
every call runs on a small thread pool of its own, never on the event loop. A Lambda
destination is this platform's own function: the record is queued for it as an
asynchronous invocation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lambdastack.invoke.destination_arn import DestinationArn, parse_destination

log = logging.getLogger("lambdastack.invoke.destinations")

EVENTBRIDGE_SOURCE = "lambda"
DETAIL_SUCCESS = "Lambda Function Invocation Result - Success"
DETAIL_FAILURE = "Lambda Function Invocation Result - Failure"

# Queue a record as an asynchronous invocation of (account, region, name, qualifier).
LambdaEnqueue = Callable[[str, str, str, str | None, bytes], Awaitable[None]]


class DeliveryError(Exception):
    """The destination refused the record or could not be reached."""


def s3_key(function_name: str, at: dt.datetime) -> str:
    """Lambda's object name: aws/lambda/async/<function>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>."""
    return (f"aws/lambda/async/{function_name}/{at:%Y/%m/%d}/{at:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}")


class AwsClients:
    """boto3 clients per (service, region), made once and shared by the delivery threads."""

    def __init__(self, endpoint_url: str | None) -> None:
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str], Any] = {}
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                import boto3
                from botocore.config import Config

                kwargs: dict[str, Any] = {
                    "region_name": region or "us-east-1",
                    "config": Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                                     read_timeout=20),
                }
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                    if not os.environ.get("AWS_ACCESS_KEY_ID"):
                        # An emulator takes any credentials; boto3 refuses to sign without some.
                        kwargs.update(aws_access_key_id="lambdastack", aws_secret_access_key="lambdastack")
                found = self._clients[key] = boto3.session.Session().client(service, **kwargs)
            return found

    def queue_url(self, target: DestinationArn) -> str:
        with self._lock:
            url = self._queue_urls.get(target.arn)
        if url is None:
            response = self.client("sqs", target.region).get_queue_url(
                QueueName=target.resource, QueueOwnerAWSAccountId=target.account
            )
            url = response["QueueUrl"]
            with self._lock:
                self._queue_urls[target.arn] = url
        return url


class Deliverer:
    def __init__(self, endpoint_url: str | None, enqueue: LambdaEnqueue, threads: int = 8) -> None:
        self.aws = AwsClients(endpoint_url)
        self.enqueue = enqueue
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="async-delivery")

    async def record(self, target_arn: str, record: str, *, success: bool, function_arn: str) -> None:
        """Send an invocation record (JSON text) to a destination; raise DeliveryError if it fails."""
        target = self._parse(target_arn)
        if target.service == "lambda":
            name, qualifier = target.function
            try:
                await self.enqueue(target.account, target.region, name, qualifier, record.encode())
            except Exception as e:
                raise DeliveryError(f"{type(e).__name__}: {e}")
            return
        await self._call(self._send_record, target, record, success, function_arn)

    async def dead_letter(self, target_arn: str, payload: str, attributes: dict[str, dict[str, str]]) -> None:
        """Send the original event to a dead-letter queue (SQS) or topic (SNS)."""
        target = self._parse(target_arn)
        if target.service not in ("sqs", "sns"):
            raise DeliveryError(f"{target_arn} is not an Amazon SQS queue or Amazon SNS topic")
        await self._call(self._send_dead_letter, target, payload, attributes)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ on the delivery threads

    @staticmethod
    def _parse(arn: str) -> DestinationArn:
        target = parse_destination(arn)
        if target is None:
            raise DeliveryError(f"{arn} is not a destination")
        return target

    async def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, fn, *args)
        except DeliveryError:
            raise
        except Exception as e:  # botocore's errors, connection failures, ...
            raise DeliveryError(f"{type(e).__name__}: {e}")

    def _send_record(self, target: DestinationArn, record: str, success: bool, function_arn: str) -> None:
        if target.service == "sqs":
            self.aws.client("sqs", target.region).send_message(QueueUrl=self.aws.queue_url(target), MessageBody=record)
        elif target.service == "sns":
            self.aws.client("sns", target.region).publish(TopicArn=target.arn, Message=record)
        elif target.service == "events":
            response = self.aws.client("events", target.region).put_events(Entries=[{
                "Source": EVENTBRIDGE_SOURCE,
                "DetailType": DETAIL_SUCCESS if success else DETAIL_FAILURE,
                "Detail": record,
                "EventBusName": target.arn,
                "Resources": [function_arn, target.arn],
            }])
            if response.get("FailedEntryCount"):
                entry = (response.get("Entries") or [{}])[0]
                raise DeliveryError(f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
        elif target.service == "s3":
            parts = function_arn.split(":")
            function_name, region = parts[6], parts[3]
            self.aws.client("s3", region).put_object(
                Bucket=target.bucket, Key=s3_key(function_name, dt.datetime.now(dt.UTC)), Body=record.encode(),
                ContentType="application/json",
            )
        else:
            raise DeliveryError(f"records cannot be sent to {target.arn}")

    def _send_dead_letter(self, target: DestinationArn, payload: str, attributes: dict[str, dict[str, str]]) -> None:
        if target.service == "sqs":
            self.aws.client("sqs", target.region).send_message(
                QueueUrl=self.aws.queue_url(target), MessageBody=payload, MessageAttributes=attributes
            )
        else:
            self.aws.client("sns", target.region).publish(
                TopicArn=target.arn, Message=payload, MessageAttributes=attributes
            )
