"""The two streams a mapping reads, Kinesis Data Streams and DynamoDB Streams, behind one shape.

Each source lists its shards, opens a shard iterator (at the mapping's starting position, or
after a checkpoint), reads records, and turns each into Lambda's record: `aws:kinesis` or
`aws:dynamodb`. The clients are boto3's, on the endpoint `serve --aws-endpoint-url` names.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from lambdastack.control.stream_settings import StreamArn
from lambdastack.invoke.destinations import AwsClients


@dataclass
class StreamRecord:
    sequence: str
    partition_key: str  # what keeps order within a shard's lanes (ParallelizationFactor)
    arrival: float  # epoch seconds
    record: dict[str, Any]  # as the function sees it


class StreamSource(Protocol):
    arn: StreamArn

    def shards(self) -> list[str]: ...

    def iterator(self, shard: str, position: str, after: str | None, at: float | None) -> str | None:
        """An iterator after `after` (a sequence number) if given, else at `position`."""
        ...

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[StreamRecord], str | None]:
        """Records, and the next iterator (None: the shard is closed and read to its end)."""
        ...


class KinesisSource:
    MAX_READ = 10_000

    def __init__(self, arn: StreamArn, aws: AwsClients, role_arn: str) -> None:
        self.arn = arn
        self.client = aws.client("kinesis", arn.region)
        self.role_arn = role_arn

    def shards(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.arn.name}
        while True:
            page = self.client.list_shards(**kwargs)
            shards += [s["ShardId"] for s in page.get("Shards", [])]
            if not page.get("NextToken"):
                return shards
            kwargs = {"NextToken": page["NextToken"]}

    def iterator(self, shard: str, position: str, after: str | None, at: float | None) -> str | None:
        kwargs: dict[str, Any] = {"StreamName": self.arn.name, "ShardId": shard}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        elif at is not None:
            kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=dt.datetime.fromtimestamp(at, dt.UTC))
        else:
            kwargs.update(ShardIteratorType=position)
        found: str | None = self.client.get_shard_iterator(**kwargs).get("ShardIterator")
        return found

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[StreamRecord], str | None]:
        page = self.client.get_records(ShardIterator=iterator, Limit=min(limit, self.MAX_READ))
        return [self._record(r, shard) for r in page.get("Records", [])], page.get("NextShardIterator")

    def _record(self, r: dict[str, Any], shard: str) -> StreamRecord:
        arrival = r["ApproximateArrivalTimestamp"]
        arrival_s = arrival.timestamp() if isinstance(arrival, dt.datetime) else float(arrival)
        data = r["Data"]
        return StreamRecord(r["SequenceNumber"], r.get("PartitionKey", ""), arrival_s, {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r.get("PartitionKey", ""),
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode(),
                "approximateArrivalTimestamp": round(arrival_s, 3),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.role_arn,
            "awsRegion": self.arn.region,
            "eventSourceARN": self.arn.arn,
        })


class DynamoDbStreamSource:
    MAX_READ = 1_000

    def __init__(self, arn: StreamArn, aws: AwsClients) -> None:
        self.arn = arn
        self.client = aws.client("dynamodbstreams", arn.region)

    def shards(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamArn": self.arn.arn}
        while True:
            description = self.client.describe_stream(**kwargs)["StreamDescription"]
            shards += [s["ShardId"] for s in description.get("Shards", [])]
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs = {"StreamArn": self.arn.arn, "ExclusiveStartShardId": last}

    def iterator(self, shard: str, position: str, after: str | None, at: float | None) -> str | None:
        kwargs: dict[str, Any] = {"StreamArn": self.arn.arn, "ShardId": shard}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
        else:
            kwargs.update(ShardIteratorType=position)
        found: str | None = self.client.get_shard_iterator(**kwargs).get("ShardIterator")
        return found

    def read(self, shard: str, iterator: str, limit: int) -> tuple[list[StreamRecord], str | None]:
        page = self.client.get_records(ShardIterator=iterator, Limit=min(limit, self.MAX_READ))
        return [self._record(r) for r in page.get("Records", [])], page.get("NextShardIterator")

    def _record(self, r: dict[str, Any]) -> StreamRecord:
        change = dict(r.get("dynamodb") or {})
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, dt.datetime):
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        arrival = float(change.get("ApproximateCreationDateTime") or 0)
        keys = change.get("Keys") or {}
        return StreamRecord(change.get("SequenceNumber", ""), repr(sorted(keys.items())), arrival, {
            "eventID": r.get("eventID", ""),
            "eventName": r.get("eventName", ""),
            "eventVersion": r.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": r.get("awsRegion") or self.arn.region,
            "dynamodb": change,
            "eventSourceARN": self.arn.arn,
        })

