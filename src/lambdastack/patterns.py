"""Event patterns, in EventBridge's syntax: what Lambda's FilterCriteria (and EventBridge rules) match.

A pattern is a JSON object whose leaves are lists of matchers; an event matches when every
key of the pattern matches (a nested object matches a nested object, a list matches when
any of its matchers matches the value, or any element of a list value). Matchers: a literal
(string, number, boolean, null), `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
`{"wildcard": "*.png"}`, `{"anything-but": literal | [literals] | {"prefix": s} | {"suffix": s}}`,
`{"numeric": [">", 0, "<=", 5]}`, `{"exists": true | false}`; and `{"$or": [pattern, ...]}`
at any level. `compile_pattern` checks a pattern once (InvalidPattern) and returns a matcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[Any, bool], bool]  # (value, present) -> matches
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_MISSING = object()


class InvalidPattern(ValueError):
    """The pattern is not one EventBridge (or Lambda's FilterCriteria) accepts."""


def compile_pattern(pattern: Any) -> Callable[[Any], bool]:
    """A function telling whether an event (a JSON value) matches `pattern`; raises InvalidPattern."""
    if not isinstance(pattern, dict) or not pattern:
        raise InvalidPattern("a pattern is a non-empty JSON object")
    match = _object(pattern)
    return lambda event: match(event)


def _object(pattern: dict[str, Any]) -> Callable[[Any], bool]:
    parts = [_part(key, value) for key, value in pattern.items()]
    return lambda event: all(part(event) for part in parts)


def _part(key: str, value: Any) -> Callable[[Any], bool]:
    if key == "$or":
        if not isinstance(value, list) or len(value) < 2:
            raise InvalidPattern("$or takes a list of at least two patterns")
        alternatives = [_object(p) if isinstance(p, dict) else _fail(p) for p in value]
        return lambda event: any(a(event) for a in alternatives)
    if isinstance(value, dict):
        inner = _object(value)
        return lambda event: isinstance(event, dict) and isinstance(event.get(key), dict) and inner(event[key])
    if isinstance(value, list):
        if not value:
            raise InvalidPattern(f"the list of matchers for {key!r} is empty")
        matchers = [_matcher(m) for m in value]
        return lambda event: _leaf(event, key, matchers)
    raise InvalidPattern(f"the value of {key!r} must be an object or a list of matchers")


def _fail(value: Any) -> Callable[[Any], bool]:
    raise InvalidPattern(f"$or takes patterns (objects), not {value!r}")


def _leaf(event: Any, key: str, matchers: list[Matcher]) -> bool:
    value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
    present = value is not _MISSING
    values = value if isinstance(value, list) else [value]
    if not values:  # an empty list is there, but holds nothing to match
        return any(m(_MISSING, True) for m in matchers)
    return any(m(v, present) for m in matchers for v in values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b) and type(a) is type(b)


def _matcher(spec: Any) -> Matcher:
    if spec is None or isinstance(spec, str | int | float | bool):
        return lambda value, present: present and _same(value, spec)
    if not isinstance(spec, dict) or len(spec) != 1:
        raise InvalidPattern(f"unknown matcher {spec!r}")
    [(kind, arg)] = spec.items()
    if kind == "exists":
        if not isinstance(arg, bool):
            raise InvalidPattern("exists takes true or false")
        return lambda value, present: present == arg
    if kind in ("prefix", "suffix"):
        if isinstance(arg, dict) and list(arg) == ["equals-ignore-case"] and isinstance(arg["equals-ignore-case"], str):
            text = arg["equals-ignore-case"].lower()
            if kind == "prefix":
                return lambda value, present: isinstance(value, str) and value.lower().startswith(text)
            return lambda value, present: isinstance(value, str) and value.lower().endswith(text)
        if not isinstance(arg, str):
            raise InvalidPattern(f"{kind} takes a string")
        if kind == "prefix":
            return lambda value, present: isinstance(value, str) and value.startswith(arg)
        return lambda value, present: isinstance(value, str) and value.endswith(arg)
    if kind == "equals-ignore-case":
        if not isinstance(arg, str):
            raise InvalidPattern("equals-ignore-case takes a string")
        return lambda value, present: isinstance(value, str) and value.lower() == arg.lower()
    if kind == "wildcard":
        if not isinstance(arg, str):
            raise InvalidPattern("wildcard takes a string")
        regex = re.compile(".*".join(re.escape(part) for part in arg.split("*")), re.DOTALL)
        return lambda value, present: isinstance(value, str) and regex.fullmatch(value) is not None
    if kind == "anything-but":
        if isinstance(arg, dict):
            inner = _matcher(arg)
            return lambda value, present: present and isinstance(value, str) and not inner(value, present)
        excluded = arg if isinstance(arg, list) else [arg]
        if not excluded or any(not (e is None or isinstance(e, str | int | float | bool)) for e in excluded):
            raise InvalidPattern("anything-but takes a literal, a list of literals, or a prefix or suffix")
        return lambda value, present: present and not any(_same(value, e) for e in excluded)
    if kind == "numeric":
        return _numeric(arg)
    raise InvalidPattern(f"unknown matcher {kind!r}")


def _numeric(arg: Any) -> Matcher:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidPattern("numeric takes [op, number] or [op, number, op, number]")
    checks: list[tuple[Callable[[float, float], bool], float]] = []
    for op, number in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS or isinstance(number, bool) or not isinstance(number, int | float):
            raise InvalidPattern(f"numeric: {op!r} {number!r} is not an operator and a number")
        checks.append((_NUMERIC_OPS[op], float(number)))
    return lambda value, present: (present and isinstance(value, int | float) and not isinstance(value, bool)
                                   and all(check(float(value), n) for check, n in checks))
