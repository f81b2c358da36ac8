"""botocore's own service models (Lambda, API Gateway v2, EventBridge, Scheduler, CloudWatch Logs and
Metrics): the single source of truth for routes and shapes.

The model is read straight from botocore's data directory (without importing botocore's
client machinery, which would cost tens of megabytes in the server).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Shape = dict[str, Any]


def _service_dir(service: str) -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("botocore is not installed; lambdastack reads Lambda's API model from it")
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / service
    versions = sorted(p for p in root.iterdir() if p.is_dir())
    return versions[-1]


def load_json(service: str, name: str) -> dict[str, Any]:
    """Load `name` (e.g. ``service-2``) of botocore's newest model of `service`."""
    folder = _service_dir(service)
    plain = folder / f"{name}.json"
    if plain.exists():
        return json.loads(plain.read_bytes())
    return json.loads(gzip.decompress((folder / f"{name}.json.gz").read_bytes()))


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    request_uri: str
    response_code: int
    input_shape: str | None
    output_shape: str | None


class ServiceModel:
    """Operations and shapes of one AWS service, as botocore describes them."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.metadata: dict[str, Any] = raw["metadata"]
        self.shapes: dict[str, Shape] = raw["shapes"]
        self.operations: dict[str, Operation] = {}
        for name, op in raw["operations"].items():
            http = op["http"]
            self.operations[name] = Operation(
                name=name,
                method=http["method"],
                request_uri=http["requestUri"],
                response_code=int(http.get("responseCode", 200)),
                input_shape=(op.get("input") or {}).get("shape"),
                output_shape=(op.get("output") or {}).get("shape"),
            )

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def error_shape(self, code: str) -> Shape | None:
        shape = self.shapes.get(code)
        if shape is not None and shape.get("exception"):
            return shape
        return None


@functools.cache
def lambda_model() -> ServiceModel:
    return ServiceModel(load_json("lambda", "service-2"))


@functools.cache
def apigatewayv2_model() -> ServiceModel:
    return ServiceModel(load_json("apigatewayv2", "service-2"))


@functools.cache
def events_model() -> ServiceModel:
    return ServiceModel(load_json("events", "service-2"))


@functools.cache
def scheduler_model() -> ServiceModel:
    return ServiceModel(load_json("scheduler", "service-2"))


@functools.cache
def logs_model() -> ServiceModel:
    return ServiceModel(load_json("logs", "service-2"))


@functools.cache
def cloudwatch_model() -> ServiceModel:
    """CloudWatch's model, served in its json protocol: botocore's model lists smithy-rpc-v2-cbor, json
    and query, and boto3 and the AWS CLI pick json (X-Amz-Target `GraniteServiceVersion20100801.`)."""
    raw = load_json("cloudwatch", "service-2")
    raw["metadata"] = {**raw["metadata"], "protocol": "json"}
    return ServiceModel(raw)
