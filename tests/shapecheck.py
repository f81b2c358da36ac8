"""Check raw Lambda responses against botocore's output shapes.

botocore quietly drops JSON members its model does not know, and passes wrong types
through, so a response can look fine to a client while not being what AWS sends. This
checker looks at the raw body of every response a client receives (a botocore
`after-call` hook) and records each member that is not in the operation's output shape
(or the error's shape), and each value whose JSON type does not match the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.model import OperationModel, Shape, StructureShape

_TAG = "_lambdastack_shape_checker"


# Values AWS itself sends outside the model's enum (recorded): an update in progress is
# "Creating", whatever the function's age.
SENT_BEYOND_ENUM: dict[str, set[str]] = {"LastUpdateStatusReasonCode": {"Creating"}}


def check_value(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object ({shape.name}), got {type(value).__name__}")
            return
        assert isinstance(shape, StructureShape)
        members = {
            name: member
            for name, member in shape.members.items()
            if member.serialization.get("location") not in ("header", "headers", "statusCode")
        }
        for key, item in value.items():
            if key not in members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
            elif item is not None:
                check_value(members[key], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list ({shape.name}), got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_value(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map ({shape.name}), got {type(value).__name__}")
            return
        for key, item in value.items():
            check_value(shape.key, key, f"{path}<key>", problems)
            check_value(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string ({shape.name}), got {type(value).__name__}")
        elif shape.enum and value not in shape.enum and value not in SENT_BEYOND_ENUM.get(shape.name, ()):
            problems.append(f"{path}: {value!r} is not in the enum of {shape.name}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer ({shape.name}), got {value!r}")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: expected a number ({shape.name}), got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean ({shape.name}), got {value!r}")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            problems.append(f"{path}: expected a timestamp ({shape.name}), got {value!r}")
    elif kind == "blob" and not isinstance(value, str):
        problems.append(f"{path}: expected base64 text ({shape.name}), got {type(value).__name__}")


def check_response(model: OperationModel, status: int, body: bytes, error_code: str | None) -> list[str]:
    """Problems with one raw response to `model`'s operation (empty if it matches the model)."""
    problems: list[str] = []
    where = model.name
    if status >= 300:
        shape = model.service_model.shape_for_error_code(error_code) if error_code else None
        if shape is not None:
            document = json.loads(body) if body else {}
            if model.metadata.get("protocol") == "json" or "json" in model.metadata.get("protocols", ()):
                # The json protocol (CloudWatch's model lists it beside smithy-rpc-v2-cbor) names the error and
                # its message outside the error's shape.
                document = {k: v for k, v in document.items() if k not in ("__type", "message", "Message")}
            check_value(shape, document, f"{where}!{error_code}", problems)
        return problems
    output = model.output_shape
    if output is None:
        if body:
            problems.append(f"{where}: the model has no output, but the body is {body[:80]!r}")
        return problems
    payload = output.serialization.get("payload")
    if payload is not None:
        return problems
    if not body:
        if any(m.serialization.get("location") is None for m in output.members.values()):
            problems.append(f"{where}: empty body, expected a JSON object")
        return problems
    check_value(output, json.loads(body), where, problems)
    return problems


class ShapeChecker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.operations: set[str] = set()

    def __call__(self, http_response: Any, parsed: dict[str, Any], model: OperationModel, **_: Any) -> None:
        code = parsed.get("Error", {}).get("Code") if http_response.status_code >= 300 else None
        self.operations.add(model.name)
        if code is None and model.has_streaming_output:
            return  # reading the body here would take it from the caller (Invoke's Payload)
        self.problems.extend(check_response(model, http_response.status_code, http_response.content, code))


def attach(client: Any) -> ShapeChecker:
    """Check every response `client` receives from now on (once per client)."""
    checker = getattr(client, _TAG, None)
    if checker is None:
        checker = ShapeChecker()
        client.meta.events.register(f"after-call.{client.meta.service_model.service_id.hyphenize()}", checker)
        setattr(client, _TAG, checker)
    return checker


@contextmanager
def checked(client: Any) -> Iterator[Any]:
    """Fail if a response received inside the block does not match botocore's model."""
    checker = attach(client)
    start = len(checker.problems)
    yield client
    new = checker.problems[start:]
    assert not new, "responses that do not match botocore's output shapes:\n" + "\n".join(new)
