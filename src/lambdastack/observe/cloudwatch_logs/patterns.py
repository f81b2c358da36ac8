"""CloudWatch Logs filter patterns: which log events a `filterPattern` matches.

Supported, as CloudWatch Logs reads them:

- an empty pattern matches every event;
- terms (`ERROR Exception`): every term must appear, case sensitive, anywhere in the message
  (`error` matches `0 invoke errors`, as on AWS); a term with other characters than letters
  and digits is best quoted;
- quoted phrases (`"Task timed out"`): the exact text, anywhere in the message;
- `?term` alternatives (`?ERROR ?WARN`): at least one of them must appear;
- `-term` exclusions (`ERROR -Exiting`): none of them may appear;
- regular expressions between percent signs (`%ERR[0-9]+%`);
- JSON patterns on events that are JSON objects or arrays: `{ $.level = "ERROR" }`,
  `{ $.latency > 100 }`, `{ $.user.id != 7 }`, `{ $.items[0].sku = "A*" }` (`*` is a
  wildcard in a string), `{ $.ok IS TRUE }`, `{ $.error IS NULL }`, `{ $.trace NOT EXISTS }`,
  combined with `&&`, `||` and parentheses.

- space-delimited patterns on events whose fields are separated by spaces (a field in double
  quotes or square brackets is one field, without them): `[ip, user, ..., status = 4*, bytes > 1000]`,
  each field a name with optional conditions on it (`=`, `!=`, `<`, `<=`, `>`, `>=`; `*` a
  wildcard in strings; several joined by `&&` or `||`), `...` standing for any number of fields;
  without `...` the event has exactly as many fields as the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

Matcher = Callable[[str], bool]


class PatternError(ValueError):
    """The pattern is not valid filter pattern syntax."""


def compile_pattern(pattern: str | None) -> Matcher:
    text = (pattern or "").strip()
    if not text:
        return _everything
    if text.startswith("{"):
        return _json_matcher(text)
    if text.startswith("["):
        return _delimited_matcher(text)
    if len(text) >= 2 and text.startswith("%") and text.endswith("%"):
        try:
            search = re.compile(text[1:-1]).search
        except re.error as e:
            raise PatternError(f"invalid regular expression: {e}") from None
        return lambda message: search(message) is not None
    return _terms_matcher(text)


@dataclass(frozen=True)
class Prefilter:
    """Bytes that a stored line (LogStore's `{"timestamp":…,"message":"…"}`) must hold for its
    message to match: every one of `every`, and one of `some` (when given). A cheap test on
    raw lines, so that only candidates are parsed; it never refuses a line that would match."""

    every: tuple[bytes, ...] = ()
    some: tuple[bytes, ...] = ()

    @property
    def selective(self) -> bool:
        return bool(self.every or self.some)


# A JSON event's message starts with { or [ (after white space, which JSON escapes as \t, \n, \r).
_JSON_STARTS = tuple(b'"message":"' + start for start in (b"{", b"[", b" ", b"\\"))


def prefilter(pattern: str | None) -> Prefilter:
    text = (pattern or "").strip()
    if not text or text.startswith("[") or (len(text) >= 2 and text.startswith("%") and text.endswith("%")):
        return Prefilter()
    if text.startswith("{"):
        return Prefilter(some=_JSON_STARTS)
    terms = parse_terms(text)
    every = tuple(_escaped(t.text) for t in terms if t.kind == "all")
    some = tuple(_escaped(t.text) for t in terms if t.kind == "any")
    return Prefilter(every, () if every else some)


def _escaped(text: str) -> bytes:
    """How `text` appears inside a stored line: JSON escapes it character by character."""
    return orjson.dumps(text)[1:-1]


def _everything(message: str) -> bool:
    return True


# ------------------------------------------------------------------ terms


@dataclass(frozen=True)
class Term:
    text: str
    quoted: bool
    kind: str  # "all" (must appear), "any" (?term), "none" (-term)

    def finder(self) -> Callable[[str], bool]:
        text = self.text
        return lambda message: text in message


def parse_terms(text: str) -> list[Term]:
    terms: list[Term] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        kind = "all"
        if text[i] in "?-" and i + 1 < n and not text[i + 1].isspace():
            kind = "any" if text[i] == "?" else "none"
            i += 1
        if text[i] == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(text[j])
                j += 1
            if j >= n:
                raise PatternError("a quoted term is not closed")
            terms.append(Term("".join(out), True, kind))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            word = text[i:j]
            if '"' in word:
                raise PatternError(f"invalid character(s) in term '{word}'")
            terms.append(Term(word, False, kind))
            i = j
    return terms


def _terms_matcher(text: str) -> Matcher:
    terms = parse_terms(text)
    required = [t.finder() for t in terms if t.kind == "all"]
    alternatives = [t.finder() for t in terms if t.kind == "any"]
    excluded = [t.finder() for t in terms if t.kind == "none"]

    def matches(message: str) -> bool:
        if any(find(message) for find in excluded):
            return False
        if not all(find(message) for find in required):
            return False
        return not alternatives or any(find(message) for find in alternatives)

    return matches


# ------------------------------------------------------------------ JSON patterns

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<op>&&|\|\||!=|>=|<=|=|>|<|\(|\))
    | (?P<selector>\$(?:\.[^\s.\[=!<>()&|]+|\[\d+\]|\.\*|\[\*\])*)
    | "(?P<string>(?:[^"\\]|\\.)*)"
    | (?P<word>[^\s=!<>()&|"]+)
    )""", re.VERBOSE)

Node = Callable[[Any], bool]
_MISSING = object()


def tokenize_json(body: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise PatternError(f"invalid JSON filter pattern near {body[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value)
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class _JsonParser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise PatternError("the JSON filter pattern ends too early")
        self.i += 1
        return token

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek() is not None:
            raise PatternError(f"unexpected {self.peek()[1]!r} in the JSON filter pattern")  # type: ignore[index]
        return node

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda doc: any(p(doc) for p in parts))

    def conjunction(self) -> Node:
        parts = [self.unary()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda doc: all(p(doc) for p in parts))

    def unary(self) -> Node:
        if self.peek() == ("op", "("):
            self.take()
            node = self.disjunction()
            if self.take() != ("op", ")"):
                raise PatternError("a parenthesis is not closed in the JSON filter pattern")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        kind, selector = self.take()
        if kind != "selector":
            raise PatternError(f"expected a selector such as $.field, found {selector!r}")
        path = _path(selector)
        kind, op = self.take()
        if kind == "word" and op.upper() == "IS":
            _, what = self.take()
            what = what.upper()
            if what == "TRUE":
                return lambda doc: _lookup(doc, path) is True
            if what == "FALSE":
                return lambda doc: _lookup(doc, path) is False
            if what == "NULL":
                return lambda doc: _lookup(doc, path) is None
            raise PatternError(f"IS must be followed by TRUE, FALSE or NULL, not {what!r}")
        if kind == "word" and op.upper() == "NOT":
            if self.take()[1].upper() != "EXISTS":
                raise PatternError("NOT must be followed by EXISTS")
            return lambda doc: _lookup(doc, path) is _MISSING
        if kind == "word" and op.upper() == "EXISTS":
            return lambda doc: _lookup(doc, path) is not _MISSING
        if kind != "op" or op not in ("=", "!=", ">", "<", ">=", "<="):
            raise PatternError(f"expected a comparison after {selector}, found {op!r}")
        value_kind, value = self.take()
        if value_kind not in ("string", "word"):
            raise PatternError(f"expected a value after {op}, found {value!r}")
        number = _number(value) if value_kind == "word" else None
        if op in (">", "<", ">=", "<="):
            if number is None:
                raise PatternError(f"{op} compares numbers, {value!r} is not one")
            compare = _NUMERIC[op]
            return lambda doc: _is_number(found := _lookup(doc, path)) and compare(found, number)
        equal = _equality(value, number)
        if op == "=":
            return lambda doc: equal(_lookup(doc, path))
        return lambda doc: (found := _lookup(doc, path)) is not _MISSING and not equal(found)


_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
}


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equality(value: str, number: float | None) -> Callable[[Any], bool]:
    if number is not None:
        return lambda found: (_is_number(found) and found == number) or found == value
    if "*" in value:
        star = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)
        return lambda found: isinstance(found, str) and star.fullmatch(found) is not None
    return lambda found: isinstance(found, str) and found == value


def _path(selector: str) -> list[str | int]:
    path: list[str | int] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]", selector[1:]):
        path.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return path


def _lookup(doc: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                return _MISSING
            doc = doc[step]
        else:
            if not isinstance(doc, dict) or step not in doc:
                return _MISSING
            doc = doc[step]
    return doc


def _json_matcher(text: str) -> Matcher:
    if not text.endswith("}"):
        raise PatternError("a JSON filter pattern must end with }")
    node = _JsonParser(tokenize_json(text[1:-1])).parse()

    def matches(message: str) -> bool:
        start = message.lstrip()[:1]
        if start not in ("{", "["):
            return False
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            return False
        return bool(node(doc))

    return matches


# ------------------------------------------------------------------ space-delimited patterns

_FIELD_CONDITION = re.compile(r"""\s*(?P<name>[A-Za-z0-9_$.\-]+)\s*(?P<op>!=|>=|<=|=|>|<)\s*
    (?:"(?P<string>(?:[^"\\]|\\.)*)"|(?P<word>[^\s&|]+))\s*""", re.VERBOSE)
_FIELD_NAME = re.compile(r"\s*[A-Za-z0-9_$.\-]+\s*")
_MESSAGE_FIELD = re.compile(r'"([^"]*)"|\[([^\]]*)\]|(\S+)')

FieldTest = Callable[[str], bool]


def _delimited_matcher(text: str) -> Matcher:
    if not text.endswith("]"):
        raise PatternError("a space-delimited filter pattern must end with ]")
    tests: list[FieldTest | None] = []  # None: `...`
    for item in _split_items(text[1:-1]):
        tests.append(None if item.strip() == "..." else _field_test(item))
    if not tests:
        raise PatternError("a space-delimited filter pattern needs at least one field")

    def matches(message: str) -> bool:
        fields = [m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _MESSAGE_FIELD.finditer(message)]
        return _fields_match(tests, 0, fields, 0)

    return matches


def _split_items(body: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise PatternError("a quoted value is not closed")
    items.append("".join(current))
    if any(not item.strip() for item in items):
        raise PatternError("an empty field in a space-delimited filter pattern")
    return items


def _field_test(item: str) -> FieldTest:
    if _FIELD_NAME.fullmatch(item):
        return lambda field: True
    alternatives: list[list[FieldTest]] = []
    for alternative in re.split(r"\|\|", item):
        conjunction: list[FieldTest] = []
        for part in re.split(r"&&", alternative):
            m = _FIELD_CONDITION.fullmatch(part)
            if m is None:
                raise PatternError(f"invalid field condition {part.strip()!r}")
            conjunction.append(_condition(m.group("op"), m.group("string"), m.group("word")))
        alternatives.append(conjunction)
    return lambda field: any(all(test(field) for test in conjunction) for conjunction in alternatives)


def _condition(op: str, string: str | None, word: str | None) -> FieldTest:
    value = string if string is not None else word or ""
    number = _number(value) if string is None else None
    if op in (">", "<", ">=", "<="):
        if number is None:
            raise PatternError(f"{op} compares numbers, {value!r} is not one")
        compare = _NUMERIC[op]
        return lambda field: (found := _number(field)) is not None and compare(found, number)
    if "*" in value:
        star = re.compile(".*".join(re.escape(part) for part in value.split("*")), re.DOTALL)
        equal: FieldTest = lambda field: star.fullmatch(field) is not None  # noqa: E731
    elif number is not None:
        equal = lambda field: field == value or _number(field) == number  # noqa: E731
    else:
        equal = lambda field: field == value  # noqa: E731
    return equal if op == "=" else (lambda field: not equal(field))


def _fields_match(tests: list[FieldTest | None], t: int, fields: list[str], f: int) -> bool:
    while t < len(tests):
        test = tests[t]
        if test is None:  # `...`: any number of fields, the rest of the pattern after them
            return any(_fields_match(tests, t + 1, fields, skip) for skip in range(f, len(fields) + 1))
        if f >= len(fields) or not test(fields[f]):
            return False
        t, f = t + 1, f + 1
    return f == len(fields)
