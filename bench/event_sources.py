"""What event sources cost: messages per second through mappings, publish-to-handler latency,
and how close scheduled rules fire to their minute.

    python -m bench.event_sources [--rabbit 20000] [--sqs 3000] [--latency 300] [--rules 30] [--no-schedules]

- RabbitMQ (the machine's broker): `--rabbit` messages published first, then a mapping with a
  no-op function (BatchSize 100) drains the queue; messages/s from the mapping's creation
  until the queue is empty.
- SQS (moto server on a free port): moto's own ceiling first, the same messages received and
  deleted in batches of 10 by 5 threads with no function at all, then a mapping (BatchSize 10,
  MaximumConcurrency 5) with a no-op function; messages/s of each, and the ratio.
- Latency: messages published one by one (BatchSize 1) carrying their publication time; the
  function logs its receipt time; p50/p99 of the difference.
- Schedules: `--rules` rules of `rate(1 minute)` with a function that logs its receipt time;
  jitter is the receipt time less the scheduled minute, p50/p99, over two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

import aio_pika
import boto3
import requests

from bench.common import BenchServer, free_port, percentile, write_result, zip_of

RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"
ROLE = "arn:aws:iam::000000000000:role/bench"
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:bench:b-1"
RABBIT = "amqp://guest:guest@127.0.0.1:5672/"
NOOP = "def handler(event, context):\n    return None\n"
STAMPER = ("import base64, json, time\ndef handler(event, context):\n    now = time.time()\n"
           "    for ms in event.get('rmqMessagesByQueue', {}).values():\n"
           "        for m in ms:\n            print('LAT %f' % (now - float(base64.b64decode(m['data']))))\n"
           "    if event.get('detail-type') == 'Scheduled Event':\n"
           "        import datetime\n"
           "        at = datetime.datetime.strptime(event['time'], '%Y-%m-%dT%H:%M:%SZ')\n"
           "        print('JIT %f' % (now - at.replace(tzinfo=datetime.timezone.utc).timestamp()))\n")


def _function(lam: Any, name: str, source: str) -> str:
    lam.create_function(FunctionName=name, Runtime=RUNTIME, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": zip_of({"app.py": source})}, MemorySize=1769, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    arn: str = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    return arn


def _log_values(server: BenchServer, name: str, prefix: str) -> list[float]:
    from pathlib import Path

    folder = Path(server.tmp.name) / "data" / "logs" / "000000000000" / "us-east-1" / name
    values = []
    for path in folder.rglob("*.jsonl") if folder.exists() else ():
        for line in path.read_text().splitlines():
            message = json.loads(line)["message"]
            if message.startswith(prefix):
                values.append(float(message.split()[1]) * 1000)
    return values


def _rabbit_publish(queue: str, bodies: list[bytes], pause_s: float = 0.0) -> None:
    async def go() -> None:
        connection = await aio_pika.connect(RABBIT)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True)
            for body in bodies:
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)
                if pause_s:
                    await asyncio.sleep(pause_s)
    asyncio.run(go())


def _rabbit_depth(queue: str) -> int:
    async def go() -> int:
        connection = await aio_pika.connect(RABBIT)
        async with connection:
            declared = await (await connection.channel()).declare_queue(queue, durable=True)
            return int(declared.declaration_result.message_count or 0)
    return asyncio.run(go())


def _mq_mapping(lam: Any, name: str, queue: str, secret: str, batch: int) -> None:
    lam.create_event_source_mapping(EventSourceArn=BROKER_ARN, FunctionName=name, Queues=[queue], BatchSize=batch,
                                    SourceAccessConfigurations=[{"Type": "BASIC_AUTH", "URI": secret}])


def rabbit_throughput(server: BenchServer, lam: Any, secret: str, count: int) -> dict[str, Any]:
    queue = f"bench-{time.time_ns()}"
    _rabbit_publish(queue, [b"x"] * count)
    _function(lam, "rmq-noop", NOOP)
    started = time.perf_counter()
    _mq_mapping(lam, "rmq-noop", queue, secret, 100)
    while _rabbit_depth(queue) > 0:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    return {"messages": count, "seconds": round(elapsed, 2), "messages_per_s": round(count / elapsed)}


def rabbit_latency(server: BenchServer, lam: Any, secret: str, count: int) -> dict[str, Any]:
    queue = f"bench-lat-{time.time_ns()}"
    _function(lam, "rmq-stamp", STAMPER)
    _mq_mapping(lam, "rmq-stamp", queue, secret, 1)
    time.sleep(2)  # the consumer is up
    bodies = []
    for _ in range(count):
        bodies.append(repr(time.time()).encode())
        _rabbit_publish(queue, [bodies[-1]])
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    values: list[float] = []
    while time.monotonic() < deadline:
        values = _log_values(server, "rmq-stamp", "LAT ")
        if len(values) >= count:
            break
        time.sleep(0.2)
    return {"messages": len(values), "p50_ms": round(percentile(values, 50), 2),
            "p99_ms": round(percentile(values, 99), 2)}


def _moto(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("moto did not start")


def _fill(sqs: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"}
                                                      for i in range(min(10, count - start))])


def sqs_throughput(server: BenchServer, lam: Any, sqs: Any, count: int) -> dict[str, Any]:
    # moto's ceiling: receive and delete, batches of 10, 5 threads, nothing else.
    url = sqs.create_queue(QueueName=f"ceiling-{time.time_ns()}")["QueueUrl"]
    _fill(sqs, url, count)
    done = [0]
    lock = threading.Lock()

    def drain() -> None:
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not got:
                return
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                             for i, m in enumerate(got)])
            with lock:
                done[0] += len(got)

    started = time.perf_counter()
    threads = [threading.Thread(target=drain) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ceiling = done[0] / (time.perf_counter() - started - 1.0)  # less the last empty receive
    # The same through a mapping.
    url = sqs.create_queue(QueueName=f"mapped-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _fill(sqs, url, count)
    _function(lam, "sqs-noop", NOOP)
    started = time.perf_counter()
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName="sqs-noop", BatchSize=10,
                                    ScalingConfig={"MaximumConcurrency": 5})
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        waiting = attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]
        if waiting == ("0", "0"):
            break
        time.sleep(0.05)
    mapped = count / (time.perf_counter() - started)
    return {"messages": count, "moto_ceiling_per_s": round(ceiling), "mapping_per_s": round(mapped),
            "ratio": round(mapped / ceiling, 2)}


def schedule_jitter(server: BenchServer, lam: Any, rules: int) -> dict[str, Any]:
    events = boto3.client("events", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    arn = _function(lam, "tick", STAMPER)
    for i in range(rules):
        events.put_rule(Name=f"tick-{i}", ScheduleExpression="rate(1 minute)")
        events.put_targets(Rule=f"tick-{i}", Targets=[{"Id": "fn", "Arn": arn}])
    now = time.time()
    time.sleep(120 - now % 60 + 5)  # two minute boundaries
    values = _log_values(server, "tick", "JIT ")
    return {"rules": rules, "firings": len(values), "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rabbit", type=int, default=20000)
    parser.add_argument("--sqs", type=int, default=3000)
    parser.add_argument("--latency", type=int, default=300)
    parser.add_argument("--rules", type=int, default=30)
    parser.add_argument("--no-schedules", action="store_true")
    args = parser.parse_args()
    moto_port = free_port()
    moto = _moto(moto_port)
    moto_url = f"http://127.0.0.1:{moto_port}"
    server = BenchServer("--aws-endpoint-url", moto_url, "--mq-broker", f"bench={RABBIT}")
    result: dict[str, Any] = {}
    try:
        lam = server.client()
        kwargs = dict(endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
        secret = boto3.client("secretsmanager", **kwargs).create_secret(
            Name="bench-mq", SecretString=json.dumps({"username": "guest", "password": "guest"}))["ARN"]
        result["rabbitmq"] = rabbit_throughput(server, lam, secret, args.rabbit)
        print(f"RabbitMQ, no-op function, BatchSize 100: {result['rabbitmq']['messages_per_s']:,} messages/s "
              f"({args.rabbit:,} in {result['rabbitmq']['seconds']} s)")
        result["rabbitmq_latency"] = rabbit_latency(server, lam, secret, args.latency)
        r = result["rabbitmq_latency"]
        print(f"RabbitMQ publish to handler (BatchSize 1): p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms")
        result["sqs"] = sqs_throughput(server, lam, boto3.client("sqs", **kwargs), args.sqs)
        s = result["sqs"]
        print(f"SQS (moto), BatchSize 10, pollers following the backlog: {s['mapping_per_s']:,} messages/s; "
              f"moto's own ceiling {s['moto_ceiling_per_s']:,}/s (ratio {s['ratio']})")
        if not args.no_schedules:
            result["schedules"] = schedule_jitter(server, lam, args.rules)
            j = result["schedules"]
            print(f"schedule jitter ({j['rules']} rate(1 minute) rules, {j['firings']} firings): "
                  f"p50 {j['p50_ms']} ms  p99 {j['p99_ms']} ms after the minute")
    finally:
        server.close()
        moto.terminate()
    print(f"written to {write_result('event_sources', result)}")


if __name__ == "__main__":
    main()
