"""EventBridge's pattern syntax, as FilterCriteria (and rules) apply it: each matcher against
events that match and events that do not."""

from __future__ import annotations

from typing import Any

import pytest

from lambdastack.patterns import InvalidPattern, compile_pattern

CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"a": ["x"]}, {"a": "x"}, True),
    ({"a": ["x"]}, {"a": "y"}, False),
    ({"a": ["x"]}, {}, False),
    ({"a": [5]}, {"a": 5.0}, True),
    ({"a": ["5"]}, {"a": 5}, False),
    ({"a": [True]}, {"a": 1}, False),
    ({"a": [None]}, {"a": None}, True),
    ({"a": ["x"]}, {"a": ["y", "x"]}, True),
    ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
    ({"a": {"b": ["x"]}}, {"a": "x"}, False),
    ({"a": [{"prefix": "ab"}]}, {"a": "abc"}, True),
    ({"a": [{"prefix": {"equals-ignore-case": "AB"}}]}, {"a": "abc"}, True),
    ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
    ({"a": [{"suffix": ".png"}]}, {"a": "x.jpg"}, False),
    ({"a": [{"equals-ignore-case": "ABC"}]}, {"a": "abc"}, True),
    ({"a": [{"wildcard": "img/*.png"}]}, {"a": "img/cat.png"}, True),
    ({"a": [{"wildcard": "img/*.png"}]}, {"a": "doc/cat.png"}, False),
    ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "z"}, True),
    ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "x"}, False),
    ({"a": [{"anything-but": "x"}]}, {}, False),
    ({"a": [{"anything-but": {"prefix": "tmp"}}]}, {"a": "tmpfile"}, False),
    ({"a": [{"anything-but": {"prefix": "tmp"}}]}, {"a": "file"}, True),
    ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
    ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 0}, False),
    ({"a": [{"numeric": ["=", 3]}]}, {"a": "3"}, False),
    ({"a": [{"exists": True}]}, {"a": None}, True),
    ({"a": [{"exists": False}]}, {}, True),
    ({"a": [{"exists": False}]}, {"a": 1}, False),
    ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}, True),
    ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "y"}, False),
    ({"a": ["x"], "b": ["y"]}, {"a": "x"}, False),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), CASES)
def test_matchers(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert compile_pattern(pattern)(event) is expected


@pytest.mark.parametrize("pattern", [{}, {"a": "x"}, {"a": []}, {"a": [{"numeric": [">"]}]}, {"a": [{"nope": 1}]},
                                     {"$or": [{"a": ["x"]}]}, {"a": [{"exists": "yes"}]}, [1]])
def test_invalid_patterns(pattern: Any) -> None:
    with pytest.raises(InvalidPattern):
        compile_pattern(pattern)
