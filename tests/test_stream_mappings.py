"""Event source mappings from Kinesis and DynamoDB streams on a real stream server (moto),
through the Lambda API: Lambda's record shapes, order per shard, starting positions,
checkpoints that survive a restart, retries, bisection, partial batch responses, the
on-failure destination, parallelization by partition key, tumbling windows, and Lambda's errors."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import ROLE, Server, create_function, stored_log, unique, wait_for
from moto_helpers import Aws

RECORDER = '''
import base64, json, os, time


def handler(event, context):
    time.sleep(float(os.environ.get("SLEEP", "0")))
    records = event["Records"]
    seen = []
    for r in records:
        if "kinesis" in r:
            seen.append({"id": r["eventID"], "data": base64.b64decode(r["kinesis"]["data"]).decode(),
                         "key": r["kinesis"]["partitionKey"]})
        else:
            seen.append({"id": r["eventID"], "name": r["eventName"], "change": r["dynamodb"]})
    print("GOT " + json.dumps({"at": time.time_ns(), "end": time.time_ns(), "records": seen, "first": records[0]}))
    bad = [r for r, s in zip(records, seen) if s.get("data", "").startswith("poison")]
    if bad and os.environ.get("MODE") == "raise":
        raise RuntimeError("poison")
    if bad and os.environ.get("MODE") == "report":
        return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in bad]}
    return {}
'''


@pytest.fixture(scope="module")
def srv(moto_backed_server: Server) -> Server:
    return moto_backed_server


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


@pytest.fixture(scope="module")
def kinesis(aws: Aws, moto_url: str) -> Any:
    import boto3
    return boto3.client("kinesis", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="x")


def stream(kinesis: Any, shards: int = 1) -> str:
    name = unique("stream")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    arn: str = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    return arn


def put(kinesis: Any, arn: str, items: list[tuple[str, str]]) -> None:
    """(partition key, data) records, in this order."""
    for key, data in items:
        kinesis.put_record(StreamName=arn.rsplit("/", 1)[1], PartitionKey=key, Data=data.encode())


def batches(server: Server, lam: Any, name: str) -> list[dict[str, Any]]:
    found = [json.loads(line[4:]) for s in stored_log(server, lam, name).values() for line in s
             if line.startswith("GOT ")]
    return sorted(found, key=lambda b: b["at"])


def delivered(server: Server, lam: Any, name: str) -> list[dict[str, Any]]:
    return [r for b in batches(server, lam, name) for r in b["records"]]


def settled(lam: Any, uuid: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def enabled() -> bool:
        found.update(lam.get_event_source_mapping(UUID=uuid))
        return found["State"] == "Enabled"
    assert wait_for(enabled, timeout=20), found
    return found


def recorder(lam: Any, **env: str) -> str:
    return create_function(lam, RECORDER, Timeout=30, Environment={"Variables": env})


def test_kinesis_records_reach_the_function_in_order_per_shard(lam: Any, srv: Server, kinesis: Any) -> None:
    arn = stream(kinesis, shards=2)
    items = [(f"key-{n % 5}", f"r{n}") for n in range(60)]
    put(kinesis, arn, items)
    name = recorder(lam)
    made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                           BatchSize=10)
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (made["StartingPosition"], made["BatchSize"], made["ParallelizationFactor"], made["MaximumRetryAttempts"],
            made["MaximumRecordAgeInSeconds"], made["BisectBatchOnFunctionError"], made["DestinationConfig"],
            made["TumblingWindowInSeconds"]) == ("TRIM_HORIZON", 10, 1, -1, -1, False, {"OnFailure": {}}, 0)
    settled(lam, made["UUID"])

    assert wait_for(lambda: len(delivered(srv, lam, name)) >= len(items), timeout=60)
    got = delivered(srv, lam, name)
    assert sorted(r["data"] for r in got) == sorted(d for _, d in items)  # each once
    by_shard: dict[str, list[int]] = {}
    for record in got:
        shard, sequence = record["id"].split(":")
        by_shard.setdefault(shard, []).append(int(sequence))
    assert len(by_shard) == 2 and all(seq == sorted(seq) for seq in by_shard.values())  # in order per shard
    for key in {k for k, _ in items}:  # and, as a key lives in one shard, in the order put per key
        assert [r["data"] for r in got if r["key"] == key] == [d for k, d in items if k == key]
    first = batches(srv, lam, name)[0]["first"]
    assert (first["eventSource"], first["eventVersion"], first["eventName"], first["awsRegion"],
            first["eventSourceARN"], first["invokeIdentityArn"]) == (
        "aws:kinesis", "1.0", "aws:kinesis:record", "us-east-1", arn, ROLE)
    data = first["kinesis"]
    assert data["kinesisSchemaVersion"] == "1.0" and first["eventID"].endswith(":" + data["sequenceNumber"])
    assert base64.b64decode(data["data"]).decode().startswith("r")
    assert abs(data["approximateArrivalTimestamp"] - time.time()) < 300
    assert wait_for(lambda: lam.get_event_source_mapping(UUID=made["UUID"])["LastProcessingResult"] == "OK")


def test_starting_positions_and_a_restart_resumes_after_the_checkpoint(tmp_path: Any, moto_url: str,
                                                                      kinesis: Any) -> None:
    arn = stream(kinesis)
    put(kinesis, arn, [("k", "before-1"), ("k", "before-2")])
    time.sleep(1.1)
    marker = dt.datetime.now(dt.UTC)
    time.sleep(0.1)
    put(kinesis, arn, [("k", "after-1")])
    server = Server(tmp_path / "data", "--aws-endpoint-url", moto_url).start()
    try:
        lam = server.client()
        latest, at = recorder(lam), recorder(lam)
        settled(lam, lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=latest,
                                                     StartingPosition="LATEST")["UUID"])
        made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=at, StartingPosition="AT_TIMESTAMP",
                                               StartingPositionTimestamp=marker)
        assert abs(made["StartingPositionTimestamp"].timestamp() - marker.timestamp()) < 1
        settled(lam, made["UUID"])
        put(kinesis, arn, [("k", "new-1"), ("k", "new-2")])
        assert wait_for(lambda: len(delivered(server, lam, latest)) >= 2, timeout=30)
        assert wait_for(lambda: len(delivered(server, lam, at)) >= 3, timeout=30)
        assert [r["data"] for r in delivered(server, lam, latest)] == ["new-1", "new-2"]  # nothing from before
        assert [r["data"] for r in delivered(server, lam, at)] == ["after-1", "new-1", "new-2"]

        server.stop()  # records put while the server is down wait for it
        put(kinesis, arn, [("k", "down-1"), ("k", "down-2")])
        server = Server(tmp_path / "data", "--aws-endpoint-url", moto_url, port=server.port).start()
        lam = server.client()
        put(kinesis, arn, [("k", "up-1")])
        want = {latest: ["new-1", "new-2", "down-1", "down-2", "up-1"],
                at: ["after-1", "new-1", "new-2", "down-1", "down-2", "up-1"]}
        for name, expected in want.items():
            assert wait_for(lambda n=name, e=expected: len(delivered(server, lam, n)) >= len(e), timeout=30)
            time.sleep(1)  # anything read twice would show by now
            assert [r["data"] for r in delivered(server, lam, name)] == expected  # resumed, none twice
    finally:
        server.stop()


def test_a_failing_batch_is_bisected_retried_and_described_to_the_on_failure_queue(
        lam: Any, srv: Server, kinesis: Any, aws: Aws) -> None:
    arn = stream(kinesis)
    dlq_url, dlq_arn = aws.queue(unique("stream-dlq"))
    put(kinesis, arn, [("k", f"ok-{n}") for n in range(3)] + [("k", "poison")] + [("k", f"ok-{n}")
                                                                                  for n in range(3, 8)])
    name = recorder(lam, MODE="raise")
    uuid = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON", BatchSize=10,
        BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}})["UUID"]
    [message] = aws.messages(dlq_url, 1, timeout=60)
    record = json.loads(message["Body"])
    poison = next(r for r in delivered(srv, lam, name) if r["data"] == "poison")
    sequence = poison["id"].split(":")[1]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # the try and one retry, once isolated
    assert record["requestContext"]["functionArn"] == lam.get_function(FunctionName=name)["Configuration"][
        "FunctionArn"]
    assert record["responseContext"]["functionError"] == "Unhandled" and record["version"] == "1.0"
    info = record["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"],
            info["streamArn"]) == (poison["id"].split(":")[0], sequence, sequence, 1, arn)
    # The good records all went through; the shard goes on after the poison record.
    put(kinesis, arn, [("k", "later")])
    assert wait_for(lambda: "later" in {r["data"] for r in delivered(srv, lam, name)}, timeout=30)
    assert {r["data"] for r in delivered(srv, lam, name)} >= {f"ok-{n}" for n in range(8)}
    assert lam.get_event_source_mapping(UUID=uuid)["DestinationConfig"] == {"OnFailure": {"Destination": dlq_arn}}


def test_a_partial_batch_response_retries_from_the_lowest_failed_record(lam: Any, srv: Server, kinesis: Any,
                                                                        aws: Aws) -> None:
    arn = stream(kinesis)
    dlq_url, dlq_arn = aws.queue(unique("stream-dlq"))
    put(kinesis, arn, [("k", d) for d in ("a", "b", "poison-1", "c", "poison-2", "d")])
    name = recorder(lam, MODE="report")
    lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON", BatchSize=6,
        MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    [message] = aws.messages(dlq_url, 1, timeout=60)
    info = json.loads(message["Body"])["KinesisBatchInfo"]
    got = batches(srv, lam, name)
    assert [r["data"] for r in got[0]["records"]] == ["a", "b", "poison-1", "c", "poison-2", "d"]
    poison = got[0]["records"][2]["id"].split(":")[1]
    # No retries allowed: from the lowest failed record on, the batch is given up (and described).
    assert (info["startSequenceNumber"], info["batchSize"]) == (poison, 4)
    assert len(got) == 1


def test_parallelization_runs_lanes_of_a_shard_at_once_in_order_per_key(lam: Any, srv: Server,
                                                                        kinesis: Any) -> None:
    arn = stream(kinesis)
    items = [(f"key-{n % 8}", f"r{n}") for n in range(48)]
    put(kinesis, arn, items)
    name = recorder(lam, SLEEP="0.3")
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                    BatchSize=48, ParallelizationFactor=4)
    assert wait_for(lambda: len(delivered(srv, lam, name)) >= len(items), timeout=60)
    for key in {k for k, _ in items}:
        assert [r["data"] for r in delivered(srv, lam, name) if r["key"] == key] == [d for k, d in items if k == key]
    spans = [(b["at"] - 300_000_000, b["end"]) for b in batches(srv, lam, name)]  # each slept 0.3 s before "at"
    overlapping = max(sum(1 for s, e in spans if s < t_end and t_start < e) for t_start, t_end in spans)
    assert 1 < overlapping <= 4


def test_dynamodb_stream_changes_reach_the_function(lam: Any, srv: Server, moto_url: str) -> None:
    import boto3
    ddb = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    table = unique("orders")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    name = recorder(lam)
    settled(lam, lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                                 StartingPosition="TRIM_HORIZON")["UUID"])
    ddb.put_item(TableName=table, Item={"pk": {"S": "o-1"}, "status": {"S": "PAID"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "o-1"}, "status": {"S": "SHIPPED"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "o-1"}})
    assert wait_for(lambda: len(delivered(srv, lam, name)) >= 3, timeout=30)
    got = delivered(srv, lam, name)
    assert [r["name"] for r in got] == ["INSERT", "MODIFY", "REMOVE"]
    assert got[0]["change"]["NewImage"] == {"pk": {"S": "o-1"}, "status": {"S": "PAID"}}
    assert got[1]["change"]["OldImage"]["status"] == {"S": "PAID"} and got[1]["change"]["Keys"] == {"pk": {"S": "o-1"}}
    assert "NewImage" not in got[2]["change"]
    first = batches(srv, lam, name)[0]["first"]
    assert (first["eventSource"], first["eventSourceARN"], first["awsRegion"]) == ("aws:dynamodb", arn, "us-east-1")
    assert isinstance(first["dynamodb"]["ApproximateCreationDateTime"], int | float)


WINDOWED = '''
import base64, json


def handler(event, context):
    state = dict(event["state"])
    if event["isFinalInvokeForWindow"]:
        print("FINAL " + json.dumps({"window": event["window"], "state": state, "records": len(event["Records"]),
                                     "shard": event["shardId"], "arn": event["eventSourceARN"]}))
        return {"state": {}}
    values = [int(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]
    print("BATCH " + json.dumps({"window": event["window"], "before": state, "values": values}))
    return {"state": {"sum": state.get("sum", 0) + sum(values), "count": state.get("count", 0) + len(values)}}
'''


def test_a_tumbling_window_carries_state_across_batches_to_its_final_invocation(lam: Any, srv: Server,
                                                                                kinesis: Any) -> None:
    arn = stream(kinesis)
    name = create_function(lam, WINDOWED, Timeout=30)
    made = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name, StartingPosition="TRIM_HORIZON",
                                           BatchSize=3, TumblingWindowInSeconds=2)
    assert made["TumblingWindowInSeconds"] == 2
    settled(lam, made["UUID"])
    put(kinesis, arn, [("k", str(n)) for n in range(1, 11)])

    def lines(prefix: str) -> list[dict[str, Any]]:
        return [json.loads(line[len(prefix):]) for s in stored_log(srv, lam, name).values() for line in s
                if line.startswith(prefix)]

    assert wait_for(lambda: sum(f["state"].get("count", 0) for f in lines("FINAL ")) >= 10, timeout=30)
    finals, batches_seen = lines("FINAL "), lines("BATCH ")
    assert sum(f["state"]["sum"] for f in finals) == 55 and sum(f["state"]["count"] for f in finals) == 10
    assert all(f["records"] == 0 and f["arn"] == arn and f["shard"].startswith("shardId-") for f in finals)
    for final in finals:
        start, end = (dt.datetime.fromisoformat(final["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
        assert (end - start).total_seconds() == 2 and start.second % 2 == 0
        in_window = [b for b in batches_seen if b["window"] == final["window"]]
        # Each batch saw what the batches before it in the window returned.
        running = 0
        for batch in in_window:
            assert batch["before"].get("sum", 0) == running
            running += sum(batch["values"])
        assert running == final["state"]["sum"]
    assert max(len(b["values"]) for b in batches_seen) <= 3


def test_stream_mappings_refuse_what_lambda_refuses(lam: Any, kinesis: Any, aws: Aws) -> None:
    arn = stream(kinesis)
    name = recorder(lam)
    ddb_arn = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2024-01-01T00:00:00.000"

    def refused(**params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            lam.create_event_source_mapping(FunctionName=name, **params)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException", caught.value.response
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        message: str = caught.value.response["Error"]["Message"]
        return message

    assert "StartingPosition" in refused(EventSourceArn=arn)
    assert "AT_TIMESTAMP" in refused(EventSourceArn=ddb_arn, StartingPosition="AT_TIMESTAMP",
                                     StartingPositionTimestamp=dt.datetime.now(dt.UTC))
    assert "StartingPositionTimestamp" in refused(EventSourceArn=arn, StartingPosition="AT_TIMESTAMP")
    assert "MaximumRecordAgeInSeconds" in refused(EventSourceArn=arn, StartingPosition="LATEST",
                                                  MaximumRecordAgeInSeconds=30)
    assert "SQS queue or Amazon SNS topic" in refused(
        EventSourceArn=arn, StartingPosition="LATEST",
        DestinationConfig={"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:x"}})
    assert "ScalingConfig" in refused(EventSourceArn=arn, StartingPosition="LATEST",
                                      ScalingConfig={"MaximumConcurrency": 5})
    assert "TumblingWindowInSeconds" in refused(EventSourceArn=arn, StartingPosition="LATEST",
                                                TumblingWindowInSeconds=60, ParallelizationFactor=2)
    # The model's own ranges: a validation error before any of ours.
    with pytest.raises(ClientError) as caught:
        lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, StartingPosition="LATEST",
                                        ParallelizationFactor=11)
    assert caught.value.response["Error"]["Code"] in ("ValidationException", "InvalidParameterValueException")
    # Updatable: retries, age, bisect, destination; the source's other settings are refused.
    uuid = lam.create_event_source_mapping(FunctionName=name, EventSourceArn=arn, StartingPosition="LATEST",
                                           Enabled=False)["UUID"]
    _, dlq_arn = aws.queue(unique("stream-dlq"))
    updated = lam.update_event_source_mapping(UUID=uuid, MaximumRetryAttempts=3, MaximumRecordAgeInSeconds=120,
                                              BisectBatchOnFunctionError=True, ParallelizationFactor=2,
                                              DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
    assert (updated["MaximumRetryAttempts"], updated["MaximumRecordAgeInSeconds"],
            updated["BisectBatchOnFunctionError"], updated["ParallelizationFactor"], updated["DestinationConfig"]) == (
        3, 120, True, 2, {"OnFailure": {"Destination": dlq_arn}})
    with pytest.raises(ClientError) as caught:
        lam.update_event_source_mapping(UUID=uuid, ScalingConfig={"MaximumConcurrency": 5})
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.delete_event_source_mapping(UUID=uuid)
