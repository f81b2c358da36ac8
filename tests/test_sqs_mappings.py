"""Event source mappings from SQS queues on a real SQS-compatible server (moto), through the
Lambda API: Lambda's shapes, states and errors; batches delivered as `aws:sqs` records;
messages deleted only after success; partial batch failures; the queue's redrive policy; FIFO
queues in order within each message group."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, create_function, stored_log, unique, wait_for
from moto_helpers import Aws

RECORDER = '''
import json, os
import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    results = os.environ["RESULTS"]
    failures = []
    for record in event["Records"]:
        if record["body"].startswith("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        sqs.send_message(QueueUrl=results, MessageBody=json.dumps({"record": record, "batch": len(event["Records"])}))
    if failures and os.environ.get("MODE") == "raise":
        raise RuntimeError("some records failed")
    return {"batchItemFailures": failures}
'''


@pytest.fixture(scope="module")
def srv(moto_backed_server: Server) -> Server:
    return moto_backed_server


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def recorder(lam: Any, aws: Aws, mode: str = "report") -> tuple[str, str]:
    """A function that copies each record to a results queue (and leaves `fail...` bodies alone)."""
    results_url, _ = aws.queue(unique("results"))
    name = create_function(lam, RECORDER, Timeout=30, Environment={"Variables": {"RESULTS": results_url,
                                                                                 "MODE": mode}})
    return name, results_url


def settled(lam: Any, uuid: str, state: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(lam.get_event_source_mapping(UUID=uuid))
        return found["State"] == state
    assert wait_for(reached, timeout=20), found
    return found


def counts(aws: Aws, url: str) -> tuple[int, int]:
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def bodies(aws: Aws, url: str, count: int) -> list[dict[str, Any]]:
    got = [json.loads(m["Body"]) for m in aws.messages(url, count)]
    for message in aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []):
        got.append(json.loads(message["Body"]))  # any more would be duplicates
    return got


def test_mapping_shapes_states_and_errors(lam: Any, aws: Aws) -> None:
    name, _ = recorder(lam, aws)
    _, queue_arn = aws.queue(unique("src"))
    made = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=5)
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = made["UUID"]
    function_arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert (made["State"], made["StateTransitionReason"], made["BatchSize"], made["EventSourceArn"],
            made["FunctionArn"], made["MaximumBatchingWindowInSeconds"]) == (
        "Creating", "USER_INITIATED", 5, queue_arn, function_arn, 0)
    assert made["EventSourceMappingArn"].endswith(f":event-source-mapping:{uuid}") and made["LastModified"]
    enabled = settled(lam, uuid, "Enabled")
    assert enabled["LastProcessingResult"] == "No records processed"
    assert [m["UUID"] for m in lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]] == [uuid]
    assert [m["UUID"] for m in lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]] == [
        uuid]

    updated = lam.update_event_source_mapping(UUID=uuid, Enabled=False, BatchSize=20,
                                              MaximumBatchingWindowInSeconds=1)
    assert (updated["State"], updated["BatchSize"]) == ("Updating", 20)
    settled(lam, uuid, "Disabled")

    def refused(code: str, call: Any, **params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            call(**params)
        assert caught.value.response["Error"]["Code"] == code, caught.value.response
        message: str = caught.value.response["Error"]["Message"]
        return message

    assert "already exists" in refused("ResourceConflictException", lam.create_event_source_mapping,
                                       EventSourceArn=queue_arn, FunctionName=name)
    assert "greater than 0" in refused("InvalidParameterValueException", lam.create_event_source_mapping,
                                       EventSourceArn=aws.queue(unique("src"))[1], FunctionName=name, BatchSize=50)
    assert "kafka" in refused("InvalidParameterValueException", lam.create_event_source_mapping,
                              EventSourceArn="arn:aws:kafka:us-east-1:000000000000:cluster/c/1", FunctionName=name,
                              StartingPosition="LATEST")
    assert "StartingPosition" in refused("InvalidParameterValueException", lam.create_event_source_mapping,
                                         EventSourceArn=aws.queue(unique("src"))[1], FunctionName=name,
                                         StartingPosition="LATEST")
    for pattern in ("{}", "not json", '{"body": {"kind": "not a list"}}', '{"body": {"n": [{"numeric": [">"]}]}}'):
        assert refused("InvalidParameterValueException", lam.create_event_source_mapping,
                       EventSourceArn=aws.queue(unique("src"))[1], FunctionName=name,
                       FilterCriteria={"Filters": [{"Pattern": pattern}]}) == "Invalid filter pattern definition."
    assert refused("InvalidParameterValueException", lam.create_event_source_mapping, EventSourceArn=queue_arn,
                   FunctionName="no-such-function") == "Function does not exist"

    deleted = lam.delete_event_source_mapping(UUID=uuid)
    assert deleted["State"] == "Deleting"
    refused("ResourceNotFoundException", lam.get_event_source_mapping, UUID=uuid)
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []


def test_messages_become_records_and_are_deleted_after_success(lam: Any, aws: Aws) -> None:
    name, results = recorder(lam, aws)
    queue_url, queue_arn = aws.queue(unique("src"))
    for i in range(25):
        aws.sqs.send_message(QueueUrl=queue_url, MessageBody=f"message {i}", MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "test"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=10)["UUID"]
    got = bodies(aws, results, 25)
    assert sorted(g["record"]["body"] for g in got) == sorted(f"message {i}" for i in range(25))
    assert all(1 <= g["batch"] <= 10 for g in got)
    record = got[0]["record"]
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", queue_arn,
                                                                                     "us-east-1")
    assert record["messageAttributes"]["kind"] == {"stringValue": "test", "stringListValues": [],
                                                   "binaryListValues": [], "dataType": "String"}
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert record["attributes"]["ApproximateReceiveCount"] == "1" and record["attributes"]["SentTimestamp"]
    assert record["messageId"] and record["receiptHandle"] and record["md5OfBody"]
    assert wait_for(lambda: counts(aws, queue_url) == (0, 0), timeout=20)
    assert wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK", timeout=10)
    lam.delete_event_source_mapping(UUID=uuid)


def test_partial_batch_failures_and_the_redrive_policy(lam: Any, aws: Aws) -> None:
    name, results = recorder(lam, aws)
    _, dlq_arn = aws.queue(unique("dlq"))
    dlq_url = aws.sqs.get_queue_url(QueueName=dlq_arn.rsplit(":", 1)[1])["QueueUrl"]
    queue_url = aws.sqs.create_queue(QueueName=unique("src"), Attributes={
        "VisibilityTimeout": "4",  # longer than a batch takes (else a message comes back while in flight)
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    for body in ("ok-1", "fail-1", "ok-2", "ok-3", "fail-2"):
        aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=10,
                                           FunctionResponseTypes=["ReportBatchItemFailures"])["UUID"]
    got = bodies(aws, results, 3)
    # The ones that succeeded were deleted at once: each reached the function exactly once.
    assert sorted(g["record"]["body"] for g in got) == ["ok-1", "ok-2", "ok-3"]
    dead = sorted(m["Body"] for m in aws.messages(dlq_url, 2))
    assert dead == ["fail-1", "fail-2"]
    assert wait_for(lambda: counts(aws, queue_url) == (0, 0), timeout=20)
    lam.delete_event_source_mapping(UUID=uuid)


def test_a_failed_batch_stays_in_the_queue(lam: Any, aws: Aws) -> None:
    """Without ReportBatchItemFailures, a function error leaves the whole batch to come back."""
    name, _ = recorder(lam, aws, mode="raise")
    queue_url = aws.sqs.create_queue(QueueName=unique("src"), Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody="fail-always")
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, BatchSize=1)["UUID"]
    assert wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"]
                    == "PROBLEM: Function call failed", timeout=20)
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    settled(lam, uuid, "Disabled")
    time.sleep(2.5)  # the visibility timeout of the last receive
    assert counts(aws, queue_url) == (1, 0)  # still there, never deleted


def test_a_disabled_mapping_leaves_messages_and_a_deleted_function_takes_its_mappings(lam: Any,
                                                                                       aws: Aws) -> None:
    name, results = recorder(lam, aws)
    queue_url, queue_arn = aws.queue(unique("src"))
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name, Enabled=False)["UUID"]
    assert settled(lam, uuid, "Disabled")["State"] == "Disabled"
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody="wait for me")
    time.sleep(2)
    assert counts(aws, queue_url) == (1, 0)
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    settled(lam, uuid, "Enabled")
    assert [g["record"]["body"] for g in bodies(aws, results, 1)] == ["wait for me"]

    lam.delete_function(FunctionName=name)
    assert lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"] == []
    time.sleep(1.5)  # a poller stops within a second (the receive it is in may still bring a message)
    aws.sqs.send_message(QueueUrl=queue_url, MessageBody="nobody reads this")
    time.sleep(2)
    assert counts(aws, queue_url) == (1, 0)


def test_filter_criteria_deliver_only_matching_messages_and_delete_the_rest(lam: Any, aws: Aws) -> None:
    name, results = recorder(lam, aws)
    queue_url, queue_arn = aws.queue(unique("src"))
    sent = {
        '{"kind": "order", "qty": 3, "region": "eu-west-1"}': True,
        '{"kind": "order", "qty": 30, "region": "eu-west-1"}': False,  # qty out of range
        '{"kind": "refund", "qty": 1, "region": "us-east-1"}': False,  # kind and region
        '{"kind": "refund", "qty": 1, "region": "eu-central-1", "vip": true}': True,  # the $or's other branch
        "plain text, not JSON": False,
    }
    for body in sent:
        aws.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    pattern = {"body": {"$or": [{"kind": ["order"], "qty": [{"numeric": [">", 0, "<=", 10]}]},
                                {"region": [{"prefix": "eu-"}], "vip": [{"exists": True}]}]}}
    made = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name,
                                           FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    assert json.loads(made["FilterCriteria"]["Filters"][0]["Pattern"]) == pattern
    got = bodies(aws, results, 2)
    assert sorted(g["record"]["body"] for g in got) == sorted(b for b, wanted in sent.items() if wanted)
    assert wait_for(lambda: counts(aws, queue_url) == (0, 0), timeout=20)  # the others were deleted
    lam.delete_event_source_mapping(UUID=made["UUID"])


UPLOADS = '''
import json, os
from urllib.parse import unquote_plus

import boto3

sqs = boto3.client("sqs")


def handler(event, context):
    for record in event["Records"]:
        notification = json.loads(record["body"])
        for s3 in notification.get("Records", []):
            key = unquote_plus(s3["s3"]["object"]["key"])  # URL-encoded, as S3 sends it
            sqs.send_message(QueueUrl=os.environ["RESULTS"], MessageBody=json.dumps({
                "event": s3["eventName"], "bucket": s3["s3"]["bucket"]["name"], "key": key,
                "size": s3["s3"]["object"].get("size")}))
'''


def test_an_upload_runs_the_function_through_s3_notifications_to_sqs(lam: Any, aws: Aws) -> None:
    """S3 → SQS → Lambda, as users wire uploads: the bucket notifies a queue, the mapping reads it."""
    results, _ = aws.queue(unique("results"))
    name = create_function(lam, UPLOADS, Timeout=30, Environment={"Variables": {"RESULTS": results}})
    queue_url, queue_arn = aws.queue(unique("uploads"))
    bucket = unique("bucket")
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]})
    aws.sqs.purge_queue(QueueUrl=queue_url)  # S3's test event
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)["UUID"]
    aws.s3.put_object(Bucket=bucket, Key="photos/cat.png", Body=b"\x89PNG" + bytes(100))
    [got] = bodies(aws, results, 1)
    assert got == {"event": "ObjectCreated:Put", "bucket": bucket, "key": "photos/cat.png", "size": 104}
    lam.delete_event_source_mapping(UUID=uuid)


ORDER_RECORDER = '''
import json, time


def handler(event, context):
    time.sleep(0.05)  # long enough for the other pollers to ask for more of the same group meanwhile
    first = event["Records"][0]["attributes"]
    print("GOT " + json.dumps({"at": time.time_ns(), "bodies": [r["body"] for r in event["Records"]],
                               "group": first.get("MessageGroupId"), "dedup": first.get("MessageDeduplicationId")}))
'''


def test_a_fifo_queue_is_processed_in_order_within_each_message_group(lam: Any, aws: Aws, srv: Server) -> None:
    url = aws.sqs.create_queue(QueueName=unique("ordered") + ".fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "30"})["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    groups, per_group = ("a", "b", "c", "d", "e", "f"), 12
    for n in range(per_group):
        aws.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": g, "MessageBody": f"{g}:{n}", "MessageGroupId": g} for g in groups])
    name = create_function(lam, ORDER_RECORDER, Timeout=30)
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=4,
                                    ScalingConfig={"MaximumConcurrency": 8})

    def batches() -> list[dict[str, Any]]:
        found = [json.loads(line[4:]) for stream in stored_log(srv, lam, name).values() for line in stream
                 if line.startswith("GOT ")]
        return sorted(found, key=lambda b: b["at"])

    assert wait_for(lambda: sum(len(b["bodies"]) for b in batches()) >= per_group * len(groups), timeout=60)
    seen: dict[str, list[int]] = {g: [] for g in groups}
    for batch in batches():
        # FIFO attributes reach the function (moto gives no SequenceNumber, which SQS adds)
        assert batch["group"] in groups and batch["dedup"], batch
        for body in batch["bodies"]:
            group, n = body.split(":")
            seen[group].append(int(n))
    assert seen == {g: list(range(per_group)) for g in groups}, batches()  # each once, in the order sent
    assert wait_for(lambda: counts(aws, url) == (0, 0), timeout=20)


SLOW_RECORDER = '''
import time


def handler(event, context):
    start = time.time_ns()
    time.sleep(0.4)
    print(f"RAN {start} {time.time_ns()}")
'''


def _most_at_once(spans: list[tuple[int, int]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("maximum", [None, 3])
def test_pollers_follow_the_backlog_up_to_the_maximum_concurrency(lam: Any, aws: Aws, srv: Server,
                                                                 maximum: int | None) -> None:
    url, arn = aws.queue(unique("backlog"))
    total = 120
    for start in range(0, total, 10):
        aws.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"}
                                                          for i in range(10)])
    name = create_function(lam, SLOW_RECORDER, Timeout=30)
    scaling = {"ScalingConfig": {"MaximumConcurrency": maximum}} if maximum else {}
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, BatchSize=1, **scaling)

    def spans() -> list[tuple[int, int]]:
        return [(int(line.split()[1]), int(line.split()[2])) for stream in stored_log(srv, lam, name).values()
                for line in stream if line.startswith("RAN ")]

    assert wait_for(lambda: len(spans()) >= total, timeout=120, interval=0.5)
    most = _most_at_once(spans())
    if maximum is None:
        assert 5 < most <= 16, most  # beyond the five it starts with, within this server's bound
    else:
        assert most == maximum, most
    assert wait_for(lambda: counts(aws, url) == (0, 0), timeout=20)
