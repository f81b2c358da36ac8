"""Validate request members against the model's constraints, the way AWS reports them.

AWS answers model-constraint violations with a `ValidationException` listing every
violation ("2 validation errors detected: Value '1200' at 'timeout' failed to satisfy
constraint: ..."); botocore checks only required members, types and `min` before sending,
so the server must check `max`, `pattern` and `enum` itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.service_models import ServiceModel, Shape


@functools.cache
def _pattern(pattern: str) -> Callable[[str], Any]:
    try:
        return re.compile(pattern).fullmatch
    except re.error:
        # Java-style classes such as \p{L}: the `regex` module understands them.
        import regex

        return regex.compile(pattern).fullmatch


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value: Any, shape: Shape | None = None, model: ServiceModel | None = None) -> str:
    """A value as AWS prints it in a violation: quoted, Java-style (`[a, b]`, `{k=v}`, `null`)."""
    if value is None:
        return "null"
    text = _java(value, shape, model)
    return f"'{_abbrev(text) if isinstance(value, dict | list) else text}'"


def _java(value: Any, shape: Shape | None, model: ServiceModel | None) -> str:
    """Java's toString of the value AWS deserialized: a double is printed with its fraction."""
    kind = shape["type"] if shape else None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, bytes | bytearray):
        return f"java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]"
    if isinstance(value, dict):
        key = _inner(shape, "key", model) if kind == "map" else None
        item = _inner(shape, "value", model) if kind == "map" else None
        return "{" + ", ".join(f"{_java(k, key, model)}={_java(v, item, model)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        member = _inner(shape, "member", model) if kind == "list" else None
        return "[" + ", ".join(_java(v, member, model) for v in value) + "]"
    if kind in ("double", "float") and isinstance(value, int | float):
        return repr(float(value))
    return str(value)


def _inner(shape: Shape | None, part: str, model: ServiceModel | None) -> Shape | None:
    return model.shape(shape[part]["shape"]) if shape is not None and model is not None else None


def _abbrev(text: str) -> str:
    return text if len(text) <= 256 else text[:253] + "..."


def _constraints(shape: Shape) -> list[str]:
    """Every constraint of a shape, in the order AWS lists them for a list's members or a map's."""
    out: list[str] = []
    if shape["type"] in ("integer", "long", "double", "float"):
        fmt = (lambda n: repr(float(n))) if shape["type"] in ("double", "float") else str
        if "max" in shape:
            out.append(f"Member must have value less than or equal to {fmt(shape['max'])}")
        if "min" in shape:
            out.append(f"Member must have value greater than or equal to {fmt(shape['min'])}")
    else:
        if "max" in shape:
            out.append(f"Member must have length less than or equal to {shape['max']}")
        if "min" in shape:
            out.append(f"Member must have length greater than or equal to {shape['min']}")
    if "enum" in shape:
        out.append("Member must satisfy enum value set: [" + ", ".join(shape["enum"]) + "]")
    if "pattern" in shape:
        out.append(f"Member must satisfy regular expression pattern: {shape['pattern']}")
    return out


NOT_NULL = "Member must not be null"
# Members whose enum the operation checks, answering as AWS does (InvalidParameterValueException,
# its own list): a function's runtime.
CHECKED_BY_OPERATION = {("Runtime", "runtime")}
# Enums AWS lists in an order of its own (a Java set's), not the model's: as recorded.
ENUM_AS_AWS_PRINTS: dict[str, list[str]] = {"InvokeMode": ["RESPONSE_STREAM", "BUFFERED"]}
MEMO_SIZE = 4096


def _memo_key(shape_name: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """A key for inputs made of scalars (and blobs, judged only by their length), else None."""
    items: list[tuple[str, Any]] = []
    for name, value in params.items():
        if isinstance(value, bytes | bytearray):
            value = ("blob", len(value))
        elif not isinstance(value, str | int | float | bool | None):
            return None
        items.append((name, value))
    return (shape_name, *sorted(items))


class Validator:
    def __init__(self, model: ServiceModel, error: type[errors.LambdaError] = errors.Validation) -> None:
        self.model = model
        self.error = error
        self._passed: set[tuple[Any, ...]] = set()  # inputs already found valid (validation is pure)

    def validate(self, shape_name: str, params: dict[str, Any]) -> None:
        """Raise a ValidationException listing every constraint that `params` violates."""
        key = _memo_key(shape_name, params)
        if key is not None and key in self._passed:
            return
        problems: list[str] = []
        self._structure(self.model.shape(shape_name), params, "", problems)
        if not problems and key is not None:
            if len(self._passed) >= MEMO_SIZE:
                self._passed.clear()
            self._passed.add(key)
        if problems:
            noun = "error" if len(problems) == 1 else "errors"
            raise self.error(f"{len(problems)} validation {noun} detected: " + "; ".join(problems))

    def _structure(self, shape: Shape, value: dict[str, Any], path: str, out: list[str]) -> None:
        for name in shape.get("required", ()):
            if value.get(name) is None:
                out.append(f"Value null at '{path}{_camel(name)}' failed to satisfy constraint: "
                           "Member must not be null")
        for name, ref in shape["members"].items():
            member = value.get(name)
            if member is None:
                continue
            self._value(ref["shape"], member, f"{path}{_camel(name)}", out)

    def _value(self, shape_name: str, value: Any, path: str, out: list[str]) -> None:
        shape = self.model.shape(shape_name)
        kind = shape["type"]

        def fail(constraint: str) -> None:
            shown = _show(value, shape, self.model)
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

        if kind == "structure":
            if isinstance(value, dict):
                self._structure(shape, value, path + ".", out)
            return
        if kind == "string":
            if not isinstance(value, str):
                return
            if "min" in shape and len(value) < shape["min"]:
                fail(f"Member must have length greater than or equal to {shape['min']}")
            if "max" in shape and len(value) > shape["max"]:
                fail(f"Member must have length less than or equal to {shape['max']}")
            if "enum" in shape and value not in shape["enum"] and (shape_name, path) not in CHECKED_BY_OPERATION:
                listed: list[str] = ENUM_AS_AWS_PRINTS.get(shape_name) or list(shape["enum"])
                fail("Member must satisfy enum value set: [" + ", ".join(listed) + "]")
            if "pattern" in shape and _pattern(shape["pattern"])(value) is None:
                fail(f"Member must satisfy regular expression pattern: {shape['pattern']}")
        elif kind in ("integer", "long", "double", "float"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return
            if "min" in shape and value < shape["min"]:
                fail(f"Member must have value greater than or equal to {shape['min']}")
            if "max" in shape and value > shape["max"]:
                fail(f"Member must have value less than or equal to {shape['max']}")
        elif kind == "list":
            if not isinstance(value, list):
                return
            if "min" in shape and len(value) < shape["min"]:
                fail(f"Member must have length greater than or equal to {shape['min']}")
            if "max" in shape and len(value) > shape["max"]:
                fail(f"Member must have length less than or equal to {shape['max']}")
            member = self.model.shape(shape["member"]["shape"])
            if member["type"] in ("structure", "list", "map"):
                for i, item in enumerate(value):
                    if item is not None:
                        self._value(shape["member"]["shape"], item, f"{path}.{i + 1}.member", out)
                return
            member_problems: list[str] = []
            for item in value:
                if item is not None:
                    self._value(shape["member"]["shape"], item, path, member_problems)
            if member_problems or None in value:
                # AWS names the list, and every constraint on its members.
                fail("Member must satisfy constraint: [" + ", ".join([*_constraints(member), NOT_NULL]) + "]")
        elif kind == "map":
            if not isinstance(value, dict):
                return
            if "max" in shape and len(value) > shape["max"]:
                fail(f"Member must have length less than or equal to {shape['max']}")
            key, item = self.model.shape(shape["key"]["shape"]), self.model.shape(shape["value"]["shape"])
            key_problems: list[str] = []
            value_problems: list[str] = []
            for k, v in value.items():
                self._value(shape["key"]["shape"], k, path, key_problems)
                if v is not None:
                    self._value(shape["value"]["shape"], v, path, value_problems)
            if key_problems:
                fail("Map keys must satisfy constraint: [" + ", ".join(_constraints(key)) + "]")
            if value_problems or None in value.values():
                fail("Map value must satisfy constraint: [" + ", ".join([*_constraints(item), NOT_NULL]) + "]")
        elif kind == "blob" and isinstance(value, bytes | bytearray):
            if "min" in shape and len(value) < shape["min"]:
                fail(f"Member must have length greater than or equal to {shape['min']}")
            if "max" in shape and len(value) > shape["max"]:
                fail(f"Member must have length less than or equal to {shape['max']}")
