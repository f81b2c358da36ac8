"""CloudWatch Logs filter patterns (observe/cloudwatch_logs/patterns.py): which messages match."""

from __future__ import annotations

import pytest

from lambdastack.observe.cloudwatch_logs.patterns import PatternError, compile_pattern


def matching(pattern: str, messages: list[str]) -> list[str]:
    matches = compile_pattern(pattern)
    return [m for m in messages if matches(m)]


LINES = [
    "[ERROR] boom in MainThread",
    "[WARN] Deadlock found",
    "INFO all good",
    "ERRORS are plural",
    "ERROR: Exiting now",
    "Task timed out after 3.00 seconds",
]


def test_empty_pattern_matches_everything() -> None:
    assert matching("", LINES) == LINES
    assert matching("   ", LINES) == LINES
    assert compile_pattern(None)("anything")


def test_terms_all_must_appear_case_sensitive() -> None:
    assert matching("ERROR", LINES) == ["[ERROR] boom in MainThread", "ERRORS are plural", "ERROR: Exiting now"]
    assert matching("ERROR MainThread", LINES) == ["[ERROR] boom in MainThread"]
    assert matching("MainThread ERROR", LINES) == ["[ERROR] boom in MainThread"]  # in any order
    assert matching("error", LINES) == []
    assert matching("ERR", LINES) == matching("ERROR", LINES)  # anywhere, as AWS matches `error` in `errors`


def test_quoted_phrases_match_exact_text() -> None:
    assert matching('"Task timed out"', LINES) == ["Task timed out after 3.00 seconds"]
    assert matching('"timed  out"', LINES) == []
    assert matching('"ERRORS are"', LINES) == ["ERRORS are plural"]
    assert matching('"ERR"', LINES) == ["[ERROR] boom in MainThread", "ERRORS are plural", "ERROR: Exiting now"]


def test_alternatives_and_exclusions() -> None:
    assert matching("?ERROR ?WARN", LINES) == ["[ERROR] boom in MainThread", "[WARN] Deadlock found",
                                               "ERRORS are plural", "ERROR: Exiting now"]
    assert matching("ERROR -Exiting", LINES) == ["[ERROR] boom in MainThread", "ERRORS are plural"]
    assert matching("-ERROR", LINES) == ["[WARN] Deadlock found", "INFO all good",
                                         "Task timed out after 3.00 seconds"]
    assert matching('?"timed out" ?Deadlock', LINES) == ["[WARN] Deadlock found", "Task timed out after 3.00 seconds"]


def test_regular_expressions_between_percent_signs() -> None:
    assert matching("%ERR[A-Z]+%", LINES) == ["[ERROR] boom in MainThread", "ERRORS are plural", "ERROR: Exiting now"]


JSON_LINES = [
    '{"level": "ERROR", "latency": 150, "user": {"id": 7, "name": "ann"}, "items": [{"sku": "A-1"}], "ok": false}',
    '{"level": "INFO", "latency": 20, "user": {"id": 8, "name": "bob"}, "items": [], "ok": true, "trace": null}',
    '{"level": "ERROR", "latency": 99.5, "a": 1, "b": "x"}',
    "not json at all ERROR",
    '["an", "array"]',
]


def test_json_equality_and_numbers() -> None:
    assert matching('{ $.level = "ERROR" }', JSON_LINES) == [JSON_LINES[0], JSON_LINES[2]]
    assert matching("{ $.level = ERROR }", JSON_LINES) == [JSON_LINES[0], JSON_LINES[2]]
    assert matching("{ $.latency > 100 }", JSON_LINES) == [JSON_LINES[0]]
    assert matching("{ $.latency <= 99.5 }", JSON_LINES) == [JSON_LINES[1], JSON_LINES[2]]
    assert matching("{ $.user.id = 7 }", JSON_LINES) == [JSON_LINES[0]]
    assert matching("{ $.user.id != 7 }", JSON_LINES) == [JSON_LINES[1]]  # a missing field is not "different"
    assert matching('{ $.items[0].sku = "A*" }', JSON_LINES) == [JSON_LINES[0]]
    assert matching('{ $.user.name = "*n*" }', JSON_LINES) == [JSON_LINES[0]]


def test_json_and_or_parentheses() -> None:
    assert matching('{ ($.a = 1) && ($.b = "x") }', JSON_LINES) == [JSON_LINES[2]]
    assert matching('{ ($.a = 1) && ($.b = "y") }', JSON_LINES) == []
    assert matching('{ $.latency > 100 || $.level = "INFO" }', JSON_LINES) == [JSON_LINES[0], JSON_LINES[1]]
    assert matching('{ ($.level = "ERROR" && $.latency < 100) || $.user.id = 8 }', JSON_LINES) == [
        JSON_LINES[1], JSON_LINES[2]]


def test_json_is_and_exists() -> None:
    assert matching("{ $.ok IS TRUE }", JSON_LINES) == [JSON_LINES[1]]
    assert matching("{ $.ok IS FALSE }", JSON_LINES) == [JSON_LINES[0]]
    assert matching("{ $.trace IS NULL }", JSON_LINES) == [JSON_LINES[1]]
    assert matching("{ $.a NOT EXISTS }", JSON_LINES) == [JSON_LINES[0], JSON_LINES[1], JSON_LINES[4]]


def test_json_patterns_never_match_other_text() -> None:
    assert "not json at all ERROR" not in matching('{ $.level = "ERROR" }', JSON_LINES)
    assert matching("{ $[0] = an }", JSON_LINES) == [JSON_LINES[4]]


@pytest.mark.parametrize("pattern", [
    '"not closed', "{ $.a = 1", "{ $.a > abc }", "{ a = 1 }", "{ ($.a = 1 }", "{ $.a IS MAYBE }", "%[%",
    "[ip, user", "[ip, , user]", "[ip, code > abc]", "[ip, code ~ 4]", '[ip, "open]',
])
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


ACCESS = [
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
    '10.0.0.2 - ann [10/Oct/2000:13:56:01 -0700] "POST /orders HTTP/1.1" 404 120',
    '10.0.0.3 - bob [10/Oct/2000:13:57:12 -0700] "GET /orders HTTP/1.1" 503 5000',
    "a line with other fields",
]


def test_space_delimited_fields() -> None:
    pattern = "[ip, identity, user, timestamp, request, status, bytes]"
    assert matching(pattern, ACCESS) == ACCESS[:3]  # quotes and brackets make one field each
    assert matching("[ip, identity, user, timestamp, request, status = 404, bytes]", ACCESS) == [ACCESS[1]]
    assert matching("[ip, identity, user, timestamp, request, status = 5*, bytes > 1000]", ACCESS) == [ACCESS[2]]
    assert matching("[ip, identity, user, timestamp, request, status != 200, bytes]", ACCESS) == ACCESS[1:3]
    assert matching('[ip, identity, user, timestamp, request = "GET *", status, bytes]', ACCESS) == [
        ACCESS[0], ACCESS[2]]
    assert matching("[ip, identity, user = ann || user = bob, ...]", ACCESS) == ACCESS[1:3]
    assert matching("[..., status = 4* || status = 5*, bytes]", ACCESS) == ACCESS[1:3]
    assert matching("[ip = 10.*, ..., bytes >= 120 && bytes < 5000]", ACCESS) == [ACCESS[1]]
    assert matching("[ip, identity, user]", ACCESS) == []  # without `...`, as many fields as the pattern
    assert matching("[first = a, second = line, ...]", ACCESS) == [ACCESS[3]]  # names, then values
    assert matching("[...]", ACCESS) == ACCESS
