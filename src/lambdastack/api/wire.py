"""rest-json wire format: request members in, response members and errors out.

Each input member sits where its `location` says (URI label, query string, header, JSON
body or raw payload); each output member likewise. Only members the model declares are
ever written to a response.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.service_models import ServiceModel, Shape


@dataclass(frozen=True)
class _InputPlan:
    """Where each member of an input shape comes from, worked out once per shape."""

    uri: tuple[tuple[str, str], ...]  # (member, label)
    query: tuple[tuple[str, str, str], ...]  # (member, parameter, shape)
    header: tuple[tuple[str, str, str], ...]  # (member, lower-case header, shape)
    payload: tuple[str, str, bool] | None  # (member, shape, raw bytes?)
    body: dict[str, tuple[str, Any]]  # JSON key -> (member, reference), for members of the JSON body


class RequestParser:
    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._plans: dict[str, _InputPlan] = {}
        self._keys: dict[str, dict[str, tuple[str, str]]] = {}

    def _plan(self, shape_name: str) -> _InputPlan:
        plan = self._plans.get(shape_name)
        if plan is not None:
            return plan
        shape = self.model.shape(shape_name)
        payload_name = shape.get("payload")
        uri, query, header, body = [], [], [], {}
        payload = None
        for name, ref in shape["members"].items():
            location = ref.get("location")
            wire_name = ref.get("locationName", name)
            if location == "uri":
                uri.append((name, wire_name))
            elif location == "querystring":
                query.append((name, wire_name, ref["shape"]))
            elif location == "header":
                header.append((name, wire_name.lower(), ref["shape"]))
            elif name == payload_name:
                payload = (name, ref["shape"], self.model.shape(ref["shape"])["type"] in ("blob", "string"))
            else:
                body[wire_name] = (name, ref)
        plan = self._plans[shape_name] = _InputPlan(tuple(uri), tuple(query), tuple(header), payload, body)
        return plan

    def parse(
        self,
        shape_name: str | None,
        labels: dict[str, str],
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> dict[str, Any]:
        if shape_name is None:
            return {}
        plan = self._plan(shape_name)
        params: dict[str, Any] = {}
        for name, label in plan.uri:
            if label in labels:
                params[name] = labels[label]
        if query:
            for name, parameter, member_shape in plan.query:
                values = [v for k, v in query if k == parameter]
                if values:
                    params[name] = self._from_text(member_shape, values, name)
        for name, header, member_shape in plan.header:
            value = headers.get(header)
            if value is not None:
                params[name] = self._from_text(member_shape, [value], name)
        if plan.payload is not None:
            name, member_shape, raw = plan.payload
            if raw:
                params[name] = body
            elif body:
                params[name] = self._from_json(member_shape, _load_json(body), name)
        elif plan.body and body.strip():
            document = _load_json(body)
            if not isinstance(document, dict):
                raise errors.InvalidRequestContent(
                    "Could not parse request body into json: Unexpected token, expected an object"
                )
            for key, (name, ref) in plan.body.items():
                if document.get(key) is not None:
                    params[name] = self._from_json(ref["shape"], document[key], name)
        return params

    def _members_by_key(self, shape_name: str) -> dict[str, tuple[str, str]]:
        """A structure's members by the JSON key they travel under: (member, shape)."""
        found = self._keys.get(shape_name)
        if found is None:
            members = self.model.shape(shape_name)["members"]
            found = self._keys[shape_name] = {
                ref.get("locationName", name): (name, ref["shape"]) for name, ref in members.items()
            }
        return found

    def _from_text(self, shape_name: str, values: list[str], member: str) -> Any:
        shape = self.model.shape(shape_name)
        kind = shape["type"]
        if kind == "list":
            return [self._from_text(shape["member"]["shape"], [v], member) for v in values]
        value = values[0]
        if kind in ("integer", "long"):
            try:
                return int(value)
            except ValueError:
                raise errors.Validation(
                    f"1 validation error detected: Value '{value}' at '{member[:1].lower() + member[1:]}' "
                    "failed to satisfy constraint: Member must be a number"
                )
        if kind == "boolean":
            return value.lower() == "true"
        return value

    def _from_json(self, shape_name: str, value: Any, member: str) -> Any:
        shape = self.model.shape(shape_name)
        kind = shape["type"]
        ok = True
        if kind == "structure":
            ok = isinstance(value, dict)
            if ok:
                members = self._members_by_key(shape_name)
                return {
                    members[k][0]: self._from_json(members[k][1], v, members[k][0])
                    for k, v in value.items()
                    if k in members and v is not None
                }
        elif kind == "list":
            ok = isinstance(value, list)
            if ok:
                return [
                    None if v is None else self._from_json(shape["member"]["shape"], v, member) for v in value
                ]
        elif kind == "map":
            ok = isinstance(value, dict)
            if ok:
                return {
                    self._from_json(shape["key"]["shape"], k, member): (
                        None if v is None else self._from_json(shape["value"]["shape"], v, member)
                    )
                    for k, v in value.items()
                }
        elif kind == "string":
            ok = isinstance(value, str)
        elif kind in ("integer", "long"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            if not ok and isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind in ("double", "float"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok:
                return float(value)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "blob":
            if isinstance(value, str):
                try:
                    return base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise errors.InvalidParameterValue(f"Invalid base64 in member {member}")
            ok = False
        elif kind == "timestamp":
            ok = isinstance(value, int | float | str) and not isinstance(value, bool)
        if not ok:
            raise errors.InvalidRequestContent(
                "Could not parse request body into json: Could not parse payload into json: "
                f"Cannot deserialize value of member '{member}' as {kind} from {type(value).__name__}"
            )
        return value


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise errors.InvalidRequestContent(f"Could not parse request body into json: {e}")


def _timestamp(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


def _iso8601(value: Any) -> str:
    if isinstance(value, str):
        return value
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromtimestamp(float(value), dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ResponseWriter:
    def __init__(self, model: ServiceModel) -> None:
        self.model = model

    def output(self, shape_name: str | None, result: dict[str, Any] | None, default_status: int) -> tuple[
        int, list[tuple[bytes, bytes]], bytes
    ]:
        """Place each output member where the model says; return (status, headers, body)."""
        status = default_status
        headers: list[tuple[bytes, bytes]] = []
        if shape_name is None or result is None:
            return status, headers, b""
        shape = self.model.shape(shape_name)
        payload_name = shape.get("payload")
        document: dict[str, Any] = {}
        body: bytes | None = None
        for name, ref in shape["members"].items():
            value = result.get(name)
            if value is None:
                continue
            location = ref.get("location")
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                headers.append((ref.get("locationName", name).encode(), str(value).encode()))
            elif name == payload_name:
                if isinstance(value, bytes | bytearray | memoryview):
                    body = bytes(value)
                else:
                    body = orjson.dumps(self.member(ref["shape"], value))
            else:
                document[ref.get("locationName", name)] = self.member(ref["shape"], value)
        if body is None:
            if payload_name is not None or not shape["members"] or status == 204:
                # A payload member that is absent means an empty body (Invoke's Event and DryRun).
                return status, headers, b""
            body = orjson.dumps(document)
            headers.append((b"content-type", b"application/json"))
        return status, headers, body

    def member(self, shape_name: str, value: Any) -> Any:
        shape = self.model.shape(shape_name)
        kind = shape["type"]
        if kind == "structure":
            members: dict[str, Shape] = shape["members"]
            return {
                members[k].get("locationName", k): self.member(members[k]["shape"], v)
                for k, v in value.items() if k in members and v is not None
            }
        if kind == "list":
            return [self.member(shape["member"]["shape"], v) for v in value]
        if kind == "map":
            return {k: self.member(shape["value"]["shape"], v) for k, v in value.items()}
        if kind == "timestamp":
            if shape.get("timestampFormat") == "iso8601":
                return _iso8601(value)
            return _timestamp(value)
        if kind == "blob":
            return base64.b64encode(value).decode()
        return value

    def error(self, error: errors.LambdaError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        shape = self.model.error_shape(error.code)
        status = error.status
        message_key = "message"
        if shape is not None:
            status = shape.get("error", {}).get("httpStatusCode", status)
            if "Message" in shape["members"]:
                message_key = shape["members"]["Message"].get("locationName", "Message")
        document: dict[str, Any] = {"Type": error.fault, message_key: error.message}
        if self.model.metadata.get("protocol") == "json":
            document = {"__type": error.code, "message": error.message}  # where the json protocol names it
        members = shape["members"] if shape is not None else {}
        document.update({
            members.get(k, {}).get("locationName", k): v for k, v in error.members.items() if v is not None
        })
        headers = [
            (b"x-amzn-errortype", error.code.encode()),
            (b"content-type", b"application/json"),
        ]
        headers.extend((k.lower().encode(), v.encode()) for k, v in error.headers.items())
        return status, headers, orjson.dumps(document)
