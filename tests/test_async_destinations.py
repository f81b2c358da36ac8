"""Destinations and dead-letter queues against a real SQS/SNS/EventBridge/S3-compatible server.

moto runs in server mode on a free loopback port; lambdastack reaches it through
`serve --aws-endpoint-url`, exactly as it would reach AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from async_helpers import ATTEMPTS, COLLECTOR, attempts, check_record, send, settled, wait_records
from helpers import REGION, Server, create_function, wait_for
from moto_helpers import Aws

SCALE = 0.01
DETAIL_TYPES = {
    True: "Lambda Function Invocation Result - Success",
    False: "Lambda Function Invocation Result - Failure",
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("async-destinations") / "data", "--async-time-scale", str(SCALE),
                    "--aws-endpoint-url", moto_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def failing(lam: Any, **config: Any) -> str:
    """A function that fails every attempt, with no retries (records come at once)."""
    name = create_function(lam, ATTEMPTS, **config)
    return name


def configure(lam: Any, name: str, *, success: str | None = None, failure: str | None = None,
              retries: int = 0) -> None:
    destinations = {}
    if success:
        destinations["OnSuccess"] = {"Destination": success}
    if failure:
        destinations["OnFailure"] = {"Destination": failure}
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=retries,
                                         DestinationConfig=destinations)


def test_sqs_destinations(srv: Server, lam: Any, aws: Aws) -> None:
    ok_url, ok_arn = aws.queue("on-success")
    bad_url, bad_arn = aws.queue("on-failure")
    name = failing(lam)
    configure(lam, name, success=ok_arn, failure=bad_arn, retries=1)
    good = send(lam, name, {"n": 1})
    bad = send(lam, name, {"fail": "raise", "tag": "sqs"})
    [success] = [json.loads(m["Body"]) for m in aws.messages(ok_url, 1)]
    [failure] = [json.loads(m["Body"]) for m in aws.messages(bad_url, 1)]
    check_record(success, condition="Success")
    assert success["requestContext"]["requestId"] == good
    assert success["requestPayload"] == {"n": 1} and success["responsePayload"] == {"handled": {"n": 1}}
    check_record(failure, condition="RetriesExhausted")
    assert failure["requestContext"]["requestId"] == bad
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["responsePayload"]["errorMessage"] == "failed on purpose: sqs"
    view = settled(srv, name)
    assert view["counters"]["destinationDeliveries"] == 2 and view["destinationDeliveryFailures"] == 0


def test_sns_destination(srv: Server, lam: Any, aws: Aws) -> None:
    topic = aws.sns.create_topic(Name="async-results")["TopicArn"]
    url, arn = aws.queue("sns-subscriber")
    aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    name = failing(lam)
    configure(lam, name, success=topic, failure=topic)
    send(lam, name, {"n": 2})
    send(lam, name, {"fail": "raise"})
    notes = [json.loads(m["Body"]) for m in aws.messages(url, 2)]
    found = {json.loads(n["Message"])["requestContext"]["condition"]: json.loads(n["Message"]) for n in notes}
    assert all(n["TopicArn"] == topic for n in notes)
    check_record(found["Success"], condition="Success")
    check_record(found["RetriesExhausted"], condition="RetriesExhausted")


def test_eventbridge_destination(srv: Server, lam: Any, aws: Aws) -> None:
    bus = aws.events.create_event_bus(Name="async-bus")["EventBusArn"]
    url, arn = aws.queue("bus-subscriber")
    aws.events.put_rule(Name="lambda-results", EventBusName="async-bus",
                        EventPattern=json.dumps({"source": ["lambda"]}))
    aws.events.put_targets(Rule="lambda-results", EventBusName="async-bus", Targets=[{"Id": "q", "Arn": arn}])
    name = failing(lam)
    configure(lam, name, success=bus, failure=bus)
    send(lam, name, {"n": 3})
    send(lam, name, {"fail": "raise"})
    events = [json.loads(m["Body"]) for m in aws.messages(url, 2)]
    for event in events:
        success = event["detail"]["requestContext"]["condition"] == "Success"
        assert event["source"] == "lambda"
        assert event["detail-type"] == DETAIL_TYPES[success]
        function_arn = event["detail"]["requestContext"]["functionArn"]
        assert event["resources"] == [function_arn, bus]
        check_record(event["detail"], condition="Success" if success else "RetriesExhausted")
    assert {e["detail-type"] for e in events} == set(DETAIL_TYPES.values())


def test_s3_failure_destination(srv: Server, lam: Any, aws: Aws) -> None:
    aws.s3.create_bucket(Bucket="async-failures")
    name = failing(lam)
    configure(lam, name, failure="arn:aws:s3:::async-failures")
    request_id = send(lam, name, {"fail": "raise", "tag": "s3"})
    prefix = f"aws/lambda/async/{name}/"
    assert wait_for(lambda: aws.s3.list_objects_v2(Bucket="async-failures", Prefix=prefix).get("Contents"),
                    timeout=60, interval=0.2)
    [obj] = aws.s3.list_objects_v2(Bucket="async-failures", Prefix=prefix)["Contents"]
    # aws/lambda/async/<function>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>
    date, stamp = obj["Key"][len(prefix):].rsplit("/", 1)
    assert time.strptime(date, "%Y/%m/%d") and time.strptime(stamp[:19], "%Y-%m-%dT%H.%M.%S")
    record = json.loads(aws.s3.get_object(Bucket="async-failures", Key=obj["Key"])["Body"].read())
    check_record(record, condition="RetriesExhausted")
    assert record["requestContext"]["requestId"] == request_id


def test_lambda_destination(srv: Server, lam: Any) -> None:
    name = failing(lam)
    collector = create_function(lam, COLLECTOR)
    arn = lam.get_function_configuration(FunctionName=collector)["FunctionArn"]
    configure(lam, name, success=arn, failure=arn)
    send(lam, name, {"n": 4})
    send(lam, name, {"fail": "raise"})
    found = wait_records(srv, lam, collector, 2)
    assert {r["requestContext"]["condition"] for r in found} == {"Success", "RetriesExhausted"}


@pytest.mark.parametrize("kind", ["sqs", "sns"])
def test_dead_letter_queue(srv: Server, lam: Any, aws: Aws, kind: str) -> None:
    url, queue_arn = aws.queue(f"dlq-{kind}")
    target = queue_arn
    if kind == "sns":
        target = aws.sns.create_topic(Name="dlq-topic")["TopicArn"]
        aws.sns.subscribe(TopicArn=target, Protocol="sqs", Endpoint=queue_arn)
    name = failing(lam, DeadLetterConfig={"TargetArn": target})
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    event = {"fail": "raise", "tag": "dead letter"}
    request_id = send(lam, name, event)
    [message] = aws.messages(url, 1)
    if kind == "sqs":
        body = message["Body"]
        attributes = {k: (v["DataType"], v["StringValue"]) for k, v in message["MessageAttributes"].items()}
    else:
        note = json.loads(message["Body"])
        body = note["Message"]
        attributes = {k: (v["Type"], v["Value"]) for k, v in note["MessageAttributes"].items()}
    assert json.loads(body) == event  # the original event only
    assert attributes == {
        "RequestID": ("String", request_id),
        "ErrorCode": ("Number", "200"),
        "ErrorMessage": ("String", "failed on purpose: dead letter"),
    }
    assert len(attempts(srv, lam, name)) == 2
    assert settled(srv, name)["counters"]["deadLetterDeliveries"] == 1


def test_an_on_failure_destination_wins_over_the_dead_letter_queue(srv: Server, lam: Any, aws: Aws) -> None:
    dlq_url, dlq_arn = aws.queue("dlq-unused")
    dest_url, dest_arn = aws.queue("destination-used")
    name = failing(lam, DeadLetterConfig={"TargetArn": dlq_arn})
    configure(lam, name, failure=dest_arn)
    send(lam, name, {"fail": "raise"})
    [record] = [json.loads(m["Body"]) for m in aws.messages(dest_url, 1)]
    check_record(record, condition="RetriesExhausted")
    settled(srv, name)
    assert aws.sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages") is None


def test_failed_deliveries_are_counted_retried_and_then_dropped_with_the_reason(srv: Server, lam: Any) -> None:
    missing = f"arn:aws:sqs:{REGION}:123456789012:no-such-queue"
    name = failing(lam, DeadLetterConfig={"TargetArn": f"arn:aws:sns:{REGION}:123456789012:no-such-topic"})
    configure(lam, name, success=missing)
    request_id = send(lam, name, {"n": 5})
    view = settled(srv, name)
    assert view["destinationDeliveryFailures"] >= 2  # tried again before giving up
    assert view["dropped"] == {"DestinationDeliveryFailed": 1}
    assert view["counters"]["succeeded"] == 1
    document = requests.get(f"{srv.url}/_lambdastack/async/{name}", timeout=10).json()
    assert any(d["requestId"] == request_id and d["reason"] == "DestinationDeliveryFailed"
               for d in document["recentDrops"])
    assert any(f["target"] == missing for f in document["recentDeliveryFailures"])

    # The same for the dead-letter queue (no OnFailure destination).
    lam.delete_function_event_invoke_config(FunctionName=name)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    send(lam, name, {"fail": "raise"})
    assert wait_for(lambda: settled(srv, name)["dropped"].get("DeadLetterDeliveryFailed") == 1, timeout=60)
    assert settled(srv, name)["deadLetterErrors"] >= 2
