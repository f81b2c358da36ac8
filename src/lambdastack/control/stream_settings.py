"""The settings of a Kinesis or DynamoDB Streams mapping: Lambda's defaults and checks.

The model checks each member's range (BatchSize 1-10,000, ParallelizationFactor 1 to 10,
MaximumRetryAttempts -1-10,000, MaximumRecordAgeInSeconds -1 to 604,800); this module adds what
Lambda checks beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdastack import errors

STREAM_DEFAULT_BATCH = 100
STREAM_SETTINGS = {"EventSourceArn", "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
                   "StartingPosition", "StartingPositionTimestamp", "ParallelizationFactor",
                   "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
                   "DestinationConfig", "FunctionResponseTypes", "FilterCriteria", "Tags", "UUID",
                   "MetricsConfig", "LoggingConfig", "TumblingWindowInSeconds"}
UPDATABLE = ("BatchSize", "MaximumBatchingWindowInSeconds", "Enabled", "ParallelizationFactor",
             "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError",
             "TumblingWindowInSeconds")
_POSITIONS = {"kinesis": ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"), "dynamodb": ("TRIM_HORIZON", "LATEST")}
MIN_RECORD_AGE_S = 60


@dataclass(frozen=True)
class StreamArn:
    arn: str
    service: str  # kinesis | dynamodb
    region: str
    account: str
    name: str  # the stream's name (Kinesis) or the table's (DynamoDB)

    @property
    def batch_info_key(self) -> str:
        """The member of an on-failure record that describes the batch."""
        return "KinesisBatchInfo" if self.service == "kinesis" else "DDBStreamBatchInfo"


def parse_stream_arn(arn: str) -> StreamArn | None:
    """A Kinesis stream ARN (`...:stream/NAME`) or a DynamoDB stream ARN (`...:table/T/stream/LABEL`)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ("kinesis", "dynamodb"):
        return None
    resource = parts[5].split("/")
    if parts[2] == "kinesis" and len(resource) == 2 and resource[0] == "stream" and resource[1]:
        return StreamArn(arn, "kinesis", parts[3], parts[4], resource[1])
    if parts[2] == "dynamodb" and len(resource) == 4 and resource[0] == "table" and resource[2] == "stream":
        return StreamArn(arn, "dynamodb", parts[3], parts[4], resource[1])
    return None


def stream_document(service: str, params: dict[str, Any]) -> dict[str, Any]:
    """The stream members of a new mapping, with Lambda's defaults; raises InvalidParameterValue."""
    position = params.get("StartingPosition")
    if not position:
        raise errors.InvalidParameterValue("StartingPosition must be specified for a stream event source.")
    if position not in _POSITIONS[service]:
        label = "Kinesis" if service == "kinesis" else "DynamoDB Streams"
        raise errors.InvalidParameterValue(f"Unsupported starting position for {label}: {position}")
    document: dict[str, Any] = {"StartingPosition": position}
    if position == "AT_TIMESTAMP":
        at = params.get("StartingPositionTimestamp")
        if at is None:
            raise errors.InvalidParameterValue(
                "StartingPositionTimestamp must be specified when StartingPosition is AT_TIMESTAMP.")
        document["StartingPositionTimestamp"] = at.timestamp() if hasattr(at, "timestamp") else float(at)
    elif params.get("StartingPositionTimestamp") is not None:
        raise errors.InvalidParameterValue(
            "StartingPositionTimestamp can only be specified when StartingPosition is AT_TIMESTAMP.")
    document.update(
        ParallelizationFactor=params.get("ParallelizationFactor", 1),
        MaximumRetryAttempts=params.get("MaximumRetryAttempts", -1),
        MaximumRecordAgeInSeconds=params.get("MaximumRecordAgeInSeconds", -1),
        BisectBatchOnFunctionError=params.get("BisectBatchOnFunctionError", False),
        DestinationConfig=destination_config(params.get("DestinationConfig")),
        TumblingWindowInSeconds=params.get("TumblingWindowInSeconds", 0),
        FunctionResponseTypes=list(params.get("FunctionResponseTypes") or []),
    )
    check_stream(document)
    return document


def update_stream(document: dict[str, Any], params: dict[str, Any]) -> None:
    for member in UPDATABLE:
        if member in params:
            document[member] = params[member]
    if "DestinationConfig" in params:
        document["DestinationConfig"] = destination_config(params["DestinationConfig"])
    if "FunctionResponseTypes" in params:
        document["FunctionResponseTypes"] = list(params["FunctionResponseTypes"] or [])
    check_stream(document)


def check_stream(document: dict[str, Any]) -> None:
    age = document["MaximumRecordAgeInSeconds"]
    if age != -1 and age < MIN_RECORD_AGE_S:
        raise errors.InvalidParameterValue(
            f"MaximumRecordAgeInSeconds must be -1 (no limit) or at least {MIN_RECORD_AGE_S} seconds.")
    if document.get("TumblingWindowInSeconds"):
        # A window's state is one per shard here: the settings that split or replay part of a
        # batch would fold records into it twice or out of order.
        for member, plain in (("ParallelizationFactor", 1), ("BisectBatchOnFunctionError", False)):
            if document.get(member, plain) != plain:
                raise errors.InvalidParameterValue(f"{member} cannot be combined with TumblingWindowInSeconds here.")
        if document.get("FunctionResponseTypes"):
            raise errors.InvalidParameterValue(
                "ReportBatchItemFailures cannot be combined with TumblingWindowInSeconds here.")


def destination_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """`{"OnFailure": {...}}` as Lambda shows it; the destination must be an SQS queue or SNS topic."""
    on_failure = dict((config or {}).get("OnFailure") or {})
    target = on_failure.get("Destination")
    if target:
        parts = str(target).split(":")
        if len(parts) < 6 or parts[0] != "arn" or parts[2] not in ("sqs", "sns"):
            raise errors.InvalidParameterValue(
                "The destination of a stream event source mapping must be an Amazon SQS queue or Amazon SNS topic.")
        return {"OnFailure": {"Destination": target}}
    return {"OnFailure": {}}
