"""Event source mappings from a real RabbitMQ broker (the machine's, on 5672), through Lambda's
Amazon MQ shapes: the broker named by its ARN, the user from a Secrets Manager secret (moto),
batches as `aws:rmq` events, acknowledgement only after success, redelivery after a failure."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from botocore.exceptions import ClientError
from helpers import Server, create_function, logged_words, stored_log, unique, wait_for
from moto_helpers import Aws

BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:local:b-0123456789ab"
RECORDER = '''
import base64, json

def handler(event, context):
    for queue, messages in event["rmqMessagesByQueue"].items():
        for m in messages:
            body = base64.b64decode(m["data"]).decode()
            print("MSG " + json.dumps({"queue": queue, "body": body, "redelivered": m["redelivered"],
                                       "batch": len(messages), "props": m["basicProperties"],
                                       "source": event["eventSource"], "arn": event["eventSourceArn"]}))
            if body == "fail-once" and not m["redelivered"]:
                raise RuntimeError("the first delivery fails")
'''


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def rabbit() -> str:
    if not broker_up():  # the machine's broker; start it if it is down
        subprocess.run(["service", "rabbitmq-server", "start"], capture_output=True, timeout=120)
        assert wait_for(broker_up, timeout=60), "RabbitMQ is not running on 127.0.0.1:5672"
    return "amqp://127.0.0.1:5672"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, moto_url: str, rabbit: str) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("rmq") / "data", "--aws-endpoint-url", moto_url,
                    "--mq-broker", f"local={rabbit}").start()
    yield server
    server.stop()


def publish(url: str, queue: str, bodies: list[str], **properties: Any) -> None:
    async def go() -> None:
        connection = await aio_pika.connect(url, login="guest", password="guest")
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True)
            for body in bodies:
                await channel.default_exchange.publish(aio_pika.Message(body.encode(), **properties),
                                                       routing_key=queue)
    asyncio.run(go())


def queue_depth(url: str, queue: str) -> int:
    async def go() -> int:
        connection = await aio_pika.connect(url, login="guest", password="guest")
        async with connection:
            declared = await (await connection.channel()).declare_queue(queue, durable=True)
            return int(declared.declaration_result.message_count or 0)
    return asyncio.run(go())


def messages(srv: Server, lam: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(line[4:]) for stream in stored_log(srv, lam, name).values() for line in stream
            if line.startswith("MSG ")]


def secret(aws: Aws) -> str:
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=aws.sqs.meta.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    arn: str = client.create_secret(Name=unique("mq"), SecretString=json.dumps(
        {"username": "guest", "password": "guest"}))["ARN"]
    return arn


def test_messages_reach_the_function_and_are_acknowledged_after_success(srv: Server, aws: Aws, rabbit: str) -> None:
    lam = srv.client()
    name = create_function(lam, RECORDER, Timeout=30)
    queue = unique("jobs")
    publish(rabbit, queue, [f"job {i}" for i in range(20)] + ["fail-once"], content_type="text/plain",
            headers={"origin": "test", "attempt": 1}, priority=3)
    made = lam.create_event_source_mapping(
        EventSourceArn=BROKER_ARN, FunctionName=name, Queues=[queue], BatchSize=10,
        SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret(aws)}])
    assert (made["State"], made["Queues"], made["BatchSize"]) == ("Creating", [queue], 10)
    assert made["SourceAccessConfigurations"][0]["Type"] == "BASIC_AUTH"

    def all_done() -> bool:
        got = messages(srv, lam, name)
        return {m["body"] for m in got} >= {f"job {i}" for i in range(20)} | {"fail-once"} and any(
            m["body"] == "fail-once" and m["redelivered"] for m in got)
    assert wait_for(all_done, timeout=60, interval=0.5)
    got = messages(srv, lam, name)
    first = next(m for m in got if m["body"] == "job 0")
    assert (first["queue"], first["source"], first["arn"]) == (f"{queue}::/", "aws:rmq", BROKER_ARN)
    assert first["props"]["contentType"] == "text/plain" and first["props"]["priority"] == 3
    assert first["props"]["headers"]["origin"] == {"bytes": list(b"test")}
    assert first["props"]["headers"]["attempt"] == 1 and first["props"]["bodySize"] == len("job 0")
    assert max(m["batch"] for m in got) <= 10
    # The failed batch came back (redelivered) and went through; everything was acknowledged.
    assert wait_for(lambda: queue_depth(rabbit, queue) == 0, timeout=30)


def test_filter_criteria_deliver_matching_messages_and_acknowledge_the_rest(srv: Server, aws: Aws,
                                                                             rabbit: str) -> None:
    lam = srv.client()
    name = create_function(lam, RECORDER, Timeout=30)
    queue = unique("orders")
    bodies = [json.dumps({"kind": "order", "n": n}) if n % 3 == 0 else json.dumps({"kind": "ping", "n": n})
              for n in range(12)] + ["not json"]
    publish(rabbit, queue, bodies)
    lam.create_event_source_mapping(
        EventSourceArn=BROKER_ARN, FunctionName=name, Queues=[queue], BatchSize=5,
        SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret(aws)}],
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["order"]}})}]})
    wanted = [b for b in bodies if '"order"' in b]
    assert wait_for(lambda: len(messages(srv, lam, name)) >= len(wanted), timeout=30)
    assert wait_for(lambda: queue_depth(rabbit, queue) == 0, timeout=30)  # the others acknowledged too
    assert sorted(m["body"] for m in messages(srv, lam, name)) == sorted(wanted)


def test_mq_mappings_refuse_what_they_cannot_serve(srv: Server) -> None:
    lam = srv.client()
    name = create_function(lam, RECORDER)

    def refused(code: str = "InvalidParameterValueException", **params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            lam.create_event_source_mapping(FunctionName=name, **params)
        assert caught.value.response["Error"]["Code"] == code
        message: str = caught.value.response["Error"]["Message"]
        return message

    auth = [{"Type": "BASIC_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:000000000000:secret:x"}]
    assert "--mq-broker" in refused(EventSourceArn="arn:aws:mq:us-east-1:000000000000:broker:other:b-1",
                                    Queues=["q"], SourceAccessConfigurations=auth)
    # The model allows one queue at most: Lambda's own validation error.
    assert "queues" in refused("ValidationException", EventSourceArn=BROKER_ARN, Queues=["a", "b"],
                               SourceAccessConfigurations=auth)
    assert "exactly one queue" in refused(EventSourceArn=BROKER_ARN, SourceAccessConfigurations=auth)
    assert "BASIC_AUTH" in refused(EventSourceArn=BROKER_ARN, Queues=["q"],
                                   SourceAccessConfigurations=[{"Type": "VIRTUAL_HOST", "URI": "/"}])
    assert "FunctionResponseTypes" in refused(EventSourceArn=BROKER_ARN, Queues=["q"], SourceAccessConfigurations=auth,
                                              FunctionResponseTypes=["ReportBatchItemFailures"])


COUNTER = 'import base64, time\ndef handler(event, context):\n    time.sleep(0.03)\n' \
          '    for ms in event["rmqMessagesByQueue"].values():\n' \
          '        print("GOT " + " ".join(base64.b64decode(m["data"]).decode() for m in ms))\n'


def test_kill_9_three_times_while_messages_flow_loses_none(tmp_path: Any, moto_url: str, aws: Aws,
                                                           rabbit: str) -> None:
    """2,000 messages while the server is killed -9 three times: each was processed (acknowledged
    only after its function succeeded, so what a kill interrupted came back); duplicates counted."""
    import os
    import signal
    import time

    total = 2000
    queue = unique("flow")
    publish(rabbit, queue, [f"m{i}" for i in range(total)])
    data = tmp_path / "data"
    extra = ("--aws-endpoint-url", moto_url, "--mq-broker", f"local={rabbit}")
    server = Server(data, *extra).start()
    try:
        lam = server.client()
        name = create_function(lam, COUNTER, Timeout=30)
        lam.create_event_source_mapping(EventSourceArn=BROKER_ARN, FunctionName=name, Queues=[queue], BatchSize=10,
                                        SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret(aws)}])
        def seen() -> dict[str, int]:
            return logged_words(server, lam, name)  # the server of the moment (it is restarted)

        progress = []
        for _ in range(3):
            time.sleep(1.5)
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(10)
            server = Server(data, *extra, port=server.port).start()
            lam = server.client()
            progress.append(len(seen()))
        assert progress[0] < total, progress  # the kills came while messages were flowing
        assert wait_for(lambda: len(seen()) == total, timeout=120, interval=1), f"{total - len(seen())} missing"
        counts = seen()
        print(json.dumps({"messages": total, "processed": len(counts), "processed_at_each_kill": progress,
                          "duplicates": sum(c - 1 for c in counts.values()), "kills": 3}))
        assert wait_for(lambda: queue_depth(rabbit, queue) == 0, timeout=30)
    finally:
        server.stop()
