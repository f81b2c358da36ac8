"""At least once, nothing lost: SQS messages flow through a mapping while the server is killed
(`kill -9`) three times, each kill after more messages were processed, so each lands mid-flow.
After the restarts every message was processed; a message is deleted only after its function
succeeded, so what a kill interrupts comes back (duplicates are counted and reported, never
required to be zero). The function records what it got in its log, so the only queue on moto
is the source: moto's SQS slows with a queue's depth (2,000 messages take minutes there)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from helpers import Server, create_function, logged_words, unique, wait_for
from moto_helpers import Aws

RECORDER = '''
import time


def handler(event, context):
    time.sleep(0.03)
    print("GOT " + " ".join(record["body"] for record in event["Records"]))
'''
MESSAGES = 2000


@pytest.mark.timeout(900)
def test_kill_9_three_times_while_messages_flow_loses_none(tmp_path: Path, moto_url: str, aws: Aws) -> None:
    source = aws.sqs.create_queue(QueueName=unique("flow"), Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    source_arn = aws.sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for start in range(0, MESSAGES, 10):
        aws.sqs.send_message_batch(QueueUrl=source, Entries=[
            {"Id": str(i), "MessageBody": f"m{n}"} for i, n in enumerate(range(start, start + 10))])

    data = tmp_path / "data"
    extra = ("--aws-endpoint-url", moto_url)
    server = Server(data, *extra).start()
    try:
        lam = server.client()
        name = create_function(lam, RECORDER, Timeout=30)
        lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=name, BatchSize=10,
                                        ScalingConfig={"MaximumConcurrency": 4})

        def seen() -> dict[str, int]:
            return logged_words(server, lam, name)  # the server of the moment (it is restarted)

        progress = [0]
        for _ in range(3):
            more = wait_for(lambda: len(seen()) > progress[-1] and len(seen()), timeout=60, interval=0.2)
            assert more, f"no progress after {progress[-1]}"
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(10)
            progress.append(more)
            server = Server(data, *extra, port=server.port).start()
        assert progress[-1] < MESSAGES, progress  # the last kill, too, came while messages were flowing

        assert wait_for(lambda: len(seen()) == MESSAGES, timeout=600, interval=1), f"{MESSAGES - len(seen())} missing"
        counts = seen()
        assert set(counts) == {f"m{n}" for n in range(MESSAGES)}
        print(json.dumps({"messages": MESSAGES, "processed": len(counts), "processed_at_each_kill": progress[1:],
                          "duplicates": sum(c - 1 for c in counts.values()), "kills": 3}))
        assert wait_for(lambda: _empty(aws, source), timeout=30)  # and every one deleted from the source
    finally:
        server.stop()


def _empty(aws: Any, url: str) -> bool:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    waiting, in_flight = attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]
    return (waiting, in_flight) == ("0", "0")
