"""At least once, nothing lost: 2,000 SQS messages flow through a mapping while the server is
killed (`kill -9`) three times. After the restarts every message was processed; a message is
deleted only after its function succeeded, so what a kill interrupts comes back (duplicates
are counted and reported, never required to be zero)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from helpers import Server, client_for, create_function, unique, wait_for
from moto_helpers import Aws

RECORDER = '''
import os
import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    records = event["Records"]
    for start in range(0, len(records), 10):
        sqs.send_message_batch(QueueUrl=os.environ["RESULTS"], Entries=[
            {"Id": str(i), "MessageBody": r["body"]} for i, r in enumerate(records[start:start + 10])])
'''
MESSAGES = 2000


def test_kill_9_three_times_while_messages_flow_loses_none(tmp_path: Path, moto_url: str, aws: Aws) -> None:
    results, _ = aws.queue(unique("results"))
    source = aws.sqs.create_queue(QueueName=unique("flow"), Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    source_arn = aws.sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for start in range(0, MESSAGES, 10):
        aws.sqs.send_message_batch(QueueUrl=source, Entries=[
            {"Id": str(i), "MessageBody": f"m{n}"} for i, n in enumerate(range(start, start + 10))])

    data = tmp_path / "data"
    server = Server(data, "--aws-endpoint-url", moto_url).start()
    try:
        lam = client_for(server.url)
        name = create_function(lam, RECORDER, Timeout=30, Environment={"Variables": {"RESULTS": results}})
        lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=name, BatchSize=10,
                                        ScalingConfig={"MaximumConcurrency": 4})
        for _ in range(3):
            time.sleep(1.5)
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(10)
            server = Server(data, "--aws-endpoint-url", moto_url, port=server.port).start()

        seen: dict[str, int] = {}

        def all_processed() -> bool:
            while True:
                got = aws.sqs.receive_message(QueueUrl=results, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                messages = got.get("Messages", [])
                if not messages:
                    return len(seen) == MESSAGES
                for message in messages:
                    seen[message["Body"]] = seen.get(message["Body"], 0) + 1
                aws.sqs.delete_message_batch(QueueUrl=results, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

        assert wait_for(all_processed, timeout=180, interval=0.5), f"{MESSAGES - len(seen)} never processed"
        assert set(seen) == {f"m{n}" for n in range(MESSAGES)}
        duplicates = sum(count - 1 for count in seen.values())
        print(json.dumps({"messages": MESSAGES, "processed": len(seen), "duplicates": duplicates, "kills": 3}))
        assert wait_for(lambda: _empty(aws, source), timeout=30)  # and every one deleted from the source
    finally:
        server.stop()


def _empty(aws: Any, url: str) -> bool:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    waiting, in_flight = attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]
    return (waiting, in_flight) == ("0", "0")
