"""Event source mappings: Create/Get/Update/Delete/ListEventSourceMapping(s).

Sources served: Amazon SQS queues, Kinesis streams and DynamoDB streams (on the endpoint
`serve --aws-endpoint-url` names), and RabbitMQ queues (an Amazon MQ broker ARN whose broker
name the server maps to a broker URL: `serve --mq-broker NAME=amqp://host:port`). Other
sources (Kafka, DocumentDB, ActiveMQ) and settings that a source does not take are refused
with InvalidParameterValueException. FilterCriteria (at most
five patterns, EventBridge syntax: lambdastack.patterns) are checked here and applied by the
pollers.

States follow Lambda's: a new mapping is `Creating`, an updated one `Updating`, a deleted one
`Deleting` in the answer; the runner that polls (events/mappings) settles each to `Enabled`
or `Disabled` once its pollers started or stopped (`settle`). Listeners hear every change.
"""

from __future__ import annotations

import time
import uuid as uuids
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.control import pagination
from lambdastack.control.common import Deps, function_not_found, require_function, resolve
from lambdastack.control.names import FunctionRef, function_arn, parse_function_name
from lambdastack.control.stream_settings import (
    STREAM_DEFAULT_BATCH,
    STREAM_SETTINGS,
    parse_stream_arn,
    stream_document,
    update_stream,
)
from lambdastack.patterns import InvalidPattern, compile_pattern
from lambdastack.store.event_source_mappings import FunctionGone, MappingRecord, MappingStore

Listener = Callable[[str], None]
SQS_DEFAULT_BATCH = 10
MQ_DEFAULT_BATCH = 100
MQ_DEFAULT_WINDOW_S = 0.5  # what a window of 0 means for a broker, as on Lambda
_MQ_SETTINGS = {"EventSourceArn", "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
                "Queues", "SourceAccessConfigurations", "Tags", "UUID", "MetricsConfig", "LoggingConfig",
                "FilterCriteria"}
SQS_MAX_BATCH_WITHOUT_WINDOW = 10
_SQS_SETTINGS = {"EventSourceArn", "FunctionName", "Enabled", "BatchSize", "MaximumBatchingWindowInSeconds",
                 "ScalingConfig", "FunctionResponseTypes", "Tags", "UUID", "MetricsConfig", "LoggingConfig",
                 "FilterCriteria"}
MAX_FILTERS = 5
STREAMS = ("kinesis", "dynamodb")
_SETTINGS = {"sqs": _SQS_SETTINGS, "mq": _MQ_SETTINGS, "kinesis": STREAM_SETTINGS, "dynamodb": STREAM_SETTINGS}
_DEFAULT_BATCH = {"sqs": SQS_DEFAULT_BATCH, "mq": MQ_DEFAULT_BATCH, "kinesis": STREAM_DEFAULT_BATCH,
                  "dynamodb": STREAM_DEFAULT_BATCH}
_LIVE = ("LastProcessingResult",)
_HIDDEN = ("Qualifier", "Created")  # kept with a mapping, not shown: its qualifier, when it was made


_LABELS = {"sqs": "SQS", "mq": "MQ", "kinesis": "Kinesis", "dynamodb": "DynamoDB Streams"}


def _kind(source: str) -> str:
    """sqs, mq, kinesis, dynamodb (or another service's name) from an event source ARN."""
    parts = source.split(":")
    return parts[2] if len(parts) > 5 and parts[0] == "arn" else ""


def mapping_arn(account: str, region: str, uuid: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}"


def check_filters(criteria: dict[str, Any]) -> dict[str, Any]:
    """FilterCriteria as Lambda keeps them, once each pattern proved valid; raises InvalidParameterValue."""
    filters = criteria.get("Filters") or []
    if len(filters) > MAX_FILTERS:
        raise errors.InvalidParameterValue(f"The maximum number of filters is {MAX_FILTERS}.")
    for item in filters:
        try:
            compile_pattern(orjson.loads(item.get("Pattern") or ""))
        except (orjson.JSONDecodeError, InvalidPattern):
            raise errors.InvalidParameterValue("Invalid filter pattern definition.")
    return {"Filters": [{"Pattern": item["Pattern"]} for item in filters]}


def render(record: MappingRecord, live: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {k: v for k, v in record.document.items() if k not in _HIDDEN}
    out.update(live or {})
    return out


class EventSourceMappingService:
    def __init__(self, deps: Deps, mappings: MappingStore, brokers: Mapping[str, str] | None = None) -> None:
        self.deps = deps
        self.mappings = mappings
        self.brokers = dict(brokers or {})  # RabbitMQ broker name -> amqp:// URL
        self._listeners: list[Listener] = []
        self.live: Callable[[str], dict[str, Any]] = lambda uuid: {}  # the runner's figures (LastProcessingResult)

    def on_change(self, listener: Listener) -> None:
        """Call `listener(uuid)` after a mapping was created, changed or deleted (on this thread)."""
        self._listeners.append(listener)

    def on_function_deleted(self, listener: Callable[[str, str, str], None]) -> None:
        """Call `listener(account, region, name)` after a function, and with it its mappings, went."""
        self.deps.events.on_function_deleted(listener)

    # ------------------------------------------------------------------ operations

    def create(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        source = params.get("EventSourceArn")
        if not source:
            raise errors.InvalidParameterValue("Unrecognized event source.")
        kind = self._check_source(source, params)
        try:
            qualified = self._target(ref)
        except errors.ResourceNotFound:
            # AWS's answer on create (a 400, not the 404 of other operations).
            raise errors.InvalidParameterValue("Function does not exist") from None
        for other in self.mappings.all(ref.account, ref.region):
            if (other.document["EventSourceArn"] == source and other.document["FunctionArn"] == qualified
                    and other.document.get("Queues") == params.get("Queues")):
                label = {"sqs": "SQS arn", "mq": "broker arn"}.get(kind, "event source arn")
                raise errors.ResourceConflict(
                    f"An event source mapping with {label} (\" {source} \") and function (\" {ref.name} \") already "
                    f"exists. Please update or delete the existing mapping with UUID {other.uuid}",
                )
        uuid = str(uuids.uuid4())
        document: dict[str, Any] = {
            "UUID": uuid,
            "BatchSize": params.get("BatchSize", _DEFAULT_BATCH[kind]),
            "MaximumBatchingWindowInSeconds": params.get("MaximumBatchingWindowInSeconds", 0),
            "EventSourceArn": source,
            "FunctionArn": qualified,
            "LastModified": time.time(),
            "Created": time.time(),
            "State": "Creating",
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": list(params.get("FunctionResponseTypes") or []),
            "EventSourceMappingArn": mapping_arn(ref.account, ref.region, uuid),
            "Qualifier": ref.qualifier or "",
            "Enabled": params.get("Enabled", True),
        }
        if params.get("ScalingConfig"):
            document["ScalingConfig"] = params["ScalingConfig"]
        if kind in STREAMS:
            document.update(stream_document(kind, params))
        if kind == "mq":
            document["Queues"] = list(params["Queues"])
            document["SourceAccessConfigurations"] = list(params["SourceAccessConfigurations"])
        if params.get("FilterCriteria", {}).get("Filters"):
            document["FilterCriteria"] = check_filters(params["FilterCriteria"])
        self._check_batching(document)
        self._save(MappingRecord(uuid, ref.account, ref.region, ref.name, document))
        return render(MappingRecord(uuid, ref.account, ref.region, ref.name, document))

    def get(self, uuid: str) -> dict[str, Any]:
        record = self._record(uuid)
        return render(record, self._live(record))

    def update(self, uuid: str, params: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        record = self._record(uuid)
        kind = _kind(record.document["EventSourceArn"])
        unsupported = sorted(set(params) - _SETTINGS[kind] - {"StartingPosition", "StartingPositionTimestamp"})
        if unsupported:
            raise errors.InvalidParameterValue(
                f"Unsupported parameter for {_LABELS[kind]} event sources: {unsupported[0]}")
        document = dict(record.document)
        if kind in STREAMS:
            update_stream(document, params)
        if params.get("FunctionName"):
            ref = parse_function_name(params["FunctionName"], account, region)
            document["FunctionArn"] = self._target(ref)
            document["Qualifier"] = ref.qualifier or ""
            record.function_name = ref.name
        for member in ("BatchSize", "MaximumBatchingWindowInSeconds", "Enabled"):
            if member in params:
                document[member] = params[member]
        if "FunctionResponseTypes" in params:
            document["FunctionResponseTypes"] = list(params["FunctionResponseTypes"] or [])
        if "FilterCriteria" in params:
            if (params["FilterCriteria"] or {}).get("Filters"):
                document["FilterCriteria"] = check_filters(params["FilterCriteria"])
            else:
                document.pop("FilterCriteria", None)
        if "ScalingConfig" in params:
            if params["ScalingConfig"]:
                document["ScalingConfig"] = params["ScalingConfig"]
            else:
                document.pop("ScalingConfig", None)
        self._check_batching(document)
        document.update(State="Updating", StateTransitionReason="USER_INITIATED", LastModified=time.time())
        record.document = document
        self._save(record)
        return render(record, self._live(record))

    def delete(self, uuid: str) -> dict[str, Any]:
        record = self._record(uuid)
        self.mappings.delete(uuid)
        self._changed(uuid)
        record.document.update(State="Deleting", StateTransitionReason="USER_INITIATED")
        return render(record, self._live(record))

    def list_mappings(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        records = self.mappings.all(account, region)
        if params.get("FunctionName"):
            ref = parse_function_name(params["FunctionName"], account, region)
            wanted = function_arn(ref.account, ref.region, ref.name, ref.qualifier)
            records = [r for r in records if r.document["FunctionArn"] == wanted
                       or (ref.qualifier is None and r.function_name == ref.name)]
        if params.get("EventSourceArn"):
            records = [r for r in records if r.document["EventSourceArn"] == params["EventSourceArn"]]
        after = pagination.decode(params.get("Marker"), pagination.is_str)
        order = [r.uuid for r in records]
        start = 0 if after is None else order.index(after) + 1 if after in order else len(order)
        rest = records[start:]
        size = pagination.page_size(params.get("MaxItems"))
        page = rest[:size]
        out: dict[str, Any] = {"EventSourceMappings": [render(r, self._live(r)) for r in page]}
        if len(rest) > size:
            out["NextMarker"] = pagination.encode(page[-1].uuid)
        return out

    # ------------------------------------------------------------------ the runner's side

    def all(self) -> list[MappingRecord]:
        return self.mappings.all()

    def settle(self, uuid: str, enabled: bool) -> None:
        """The runner started (or stopped) the mapping's pollers: `Enabled` (or `Disabled`)."""
        record = self.mappings.get(uuid)
        if record is None:
            return
        state = "Enabled" if enabled else "Disabled"
        if record.document.get("State") != state:
            record.document["State"] = state
            try:
                self.mappings.put(record)
            except FunctionGone:
                pass

    # ------------------------------------------------------------------ helpers

    def _check_source(self, source: str, params: dict[str, Any]) -> str:
        """"sqs" or "mq" (RabbitMQ), once the source and the settings suit each other."""
        parts = source.split(":")
        service = _kind(source)
        if service not in _SETTINGS:
            raise errors.InvalidParameterValue(
                f"lambdastack does not support event source mappings for {service or source} yet: "
                "it polls Amazon SQS queues, Kinesis and DynamoDB streams, and RabbitMQ brokers"
            )
        if service in STREAMS and parse_stream_arn(source) is None:
            raise errors.InvalidParameterValue(f"Invalid stream ARN: {source}")
        if service not in STREAMS and (params.get("StartingPosition") or params.get("StartingPositionTimestamp")):
            raise errors.InvalidParameterValue(f"StartingPosition is not valid for {service.upper()} event sources.")
        unsupported = sorted(set(params) - _SETTINGS[service] - {"StartingPosition", "StartingPositionTimestamp"})
        if "DestinationConfig" in unsupported:
            raise errors.InvalidParameterValue(
                "Unsupported DestinationConfig parameter for given event source mapping type.")
        if unsupported:
            raise errors.InvalidParameterValue(
                f"Unsupported parameter for {_LABELS[service]} event sources: {unsupported[0]}")
        if service == "mq":
            broker = parts[6] if len(parts) > 6 and parts[5] == "broker" else ""
            if broker not in self.brokers:
                raise errors.InvalidParameterValue(
                    f"lambdastack knows no broker named {broker or source!r}: start the server with "
                    f"--mq-broker {broker or 'NAME'}=amqp://host:5672"
                )
            if len(params.get("Queues") or []) != 1:
                raise errors.InvalidParameterValue("Queues must name exactly one queue.")
            access = {c.get("Type") for c in params.get("SourceAccessConfigurations") or []}
            if "BASIC_AUTH" not in access:
                raise errors.InvalidParameterValue(
                    "SourceAccessConfigurations must include a BASIC_AUTH secret for an Amazon MQ event source.")
        return service

    @staticmethod
    def _check_batching(document: dict[str, Any]) -> None:
        if (":sqs:" in document["EventSourceArn"] and document["BatchSize"] > SQS_MAX_BATCH_WITHOUT_WINDOW
                and not document["MaximumBatchingWindowInSeconds"]):
            raise errors.InvalidParameterValue(
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
            )
        for kind in document["FunctionResponseTypes"]:
            if kind != "ReportBatchItemFailures":
                raise errors.InvalidParameterValue(f"Unsupported FunctionResponseType: {kind}")

    def _target(self, ref: FunctionRef) -> str:
        with self.deps.store.read() as tx:
            require_function(tx, ref)
            if ref.qualifier:
                resolve(tx, ref)
        return function_arn(ref.account, ref.region, ref.name, ref.qualifier)

    def _record(self, uuid: str) -> MappingRecord:
        record = self.mappings.get(uuid)
        if record is None:
            raise errors.ResourceNotFound("The resource you requested does not exist.")
        return record

    def _save(self, record: MappingRecord) -> None:
        try:
            self.mappings.put(record)
        except FunctionGone:
            raise function_not_found(FunctionRef(record.account, record.region, record.function_name))
        self._changed(record.uuid)

    def _live(self, record: MappingRecord) -> dict[str, Any]:
        return {k: v for k, v in self.live(record.uuid).items() if k in _LIVE}

    def _changed(self, uuid: str) -> None:
        for listener in self._listeners:
            listener(uuid)
