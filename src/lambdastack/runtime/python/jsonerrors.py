"""Why a JSON document is invalid, worded as simplejson words it.

Events are decoded with the standard library's C parser. When that fails, this module walks
the document the way simplejson (the managed runtime's decoder) does, so that a
`Runtime.UnmarshalError` carries the same message and position as on Lambda.
Only the failure path uses it.
"""

from __future__ import annotations

import re
from typing import Optional

_WS_MATCH = re.compile(r"[ \t\n\r]*").match
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?").match
_STRING_CHUNK = re.compile(r'(.*?)(["\\\x00-\x1f])', re.DOTALL).match
_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$").match
_ESCAPES = frozenset('"\\/bfnrt')


def _ws_end(s: str, pos: int) -> int:
    m = _WS_MATCH(s, pos)
    return m.end() if m is not None else pos


class _Invalid(Exception):
    def __init__(self, msg: str, pos: int, end: Optional[int] = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pos = pos
        self.end = end


def _linecol(doc: str, pos: int) -> "tuple[int, int]":
    line = doc.count("\n", 0, pos) + 1
    col = pos + 1 if line == 1 else pos - doc.rindex("\n", 0, pos)
    return line, col


def _format(doc: str, err: _Invalid) -> str:
    msg = err.msg.replace("%r", repr(doc[err.pos : err.pos + 1]))
    line, col = _linecol(doc, err.pos)
    if err.end is None:
        return "%s: line %d column %d (char %d)" % (msg, line, col, err.pos)
    end_line, end_col = _linecol(doc, err.end)
    return "%s: line %d column %d - line %d column %d (char %d - %d)" % (
        msg, line, col, end_line, end_col, err.pos, err.end
    )  # fmt: skip


class _Walker(object):
    def __init__(self, doc: str) -> None:
        self.s = doc

    def document(self) -> None:
        s = self.s
        idx = 0
        if s[:1] == "\ufeff":
            idx = 1
        elif s[:3] == "\xef\xbb\xbf":
            idx = 3
        end = _ws_end(s, self.value(_ws_end(s, idx)))
        if end != len(s):
            raise _Invalid("Extra data", end, len(s))

    def value(self, idx: int) -> int:
        s = self.s
        if idx >= len(s):
            raise _Invalid("Expecting value", idx)
        c = s[idx]
        if c == '"':
            return self.string(idx + 1)
        if c == "{":
            return self.object(idx + 1)
        if c == "[":
            return self.array(idx + 1)
        for word in ("null", "true", "false"):
            if s.startswith(word, idx):
                return idx + len(word)
        m = _NUMBER(s, idx)
        if m is None:
            raise _Invalid("Expecting value", idx)  # NaN and Infinity included: they are refused
        integer, frac, exp = m.groups()
        if not frac and not exp:
            int(integer)  # the interpreter's limit on digits applies, as it does when decoding
        return m.end()

    def string(self, end: int) -> int:
        s = self.s
        begin = end - 1
        while True:
            chunk = _STRING_CHUNK(s, end)
            if chunk is None:
                raise _Invalid("Unterminated string starting at", begin)
            end = chunk.end()
            terminator = chunk.group(2)
            if terminator == '"':
                return end
            if terminator != "\\":
                raise _Invalid("Invalid control character %r at", end - 1)
            if end >= len(s):
                raise _Invalid("Unterminated string starting at", begin)
            esc = s[end]
            if esc != "u":
                if esc not in _ESCAPES:
                    raise _Invalid("Invalid \\X escape sequence %r", end)
                end += 1
                continue
            uni, end = self.hex4(end + 1)
            if uni & 0xFC00 == 0xD800 and s[end : end + 2] == "\\u":
                low, after = self.hex4(end + 2)
                if low & 0xFC00 == 0xDC00:
                    end = after

    def hex4(self, end: int) -> "tuple[int, int]":
        digits = self.s[end : end + 4]
        if not _HEX4(digits):
            raise _Invalid("Invalid \\uXXXX escape sequence", end - 2)
        return int(digits, 16), end + 4

    def _skip(self, end: int) -> "tuple[str, int]":
        end = _ws_end(self.s, end)
        return self.s[end : end + 1], end

    def object(self, end: int) -> int:
        s = self.s
        nextchar = s[end : end + 1]
        if nextchar != '"':
            nextchar, end = self._skip(end)
            if nextchar == "}":
                return end + 1
            if nextchar != '"':
                raise _Invalid("Expecting property name enclosed in double quotes or '}'", end)
        end += 1
        while True:
            end = self.string(end)
            if s[end : end + 1] != ":":
                end = _ws_end(s, end)
                if s[end : end + 1] != ":":
                    raise _Invalid("Expecting ':' delimiter", end)
            end = self.value(_ws_end(s, end + 1))
            nextchar, end = self._skip(end)
            end += 1
            if nextchar == "}":
                return end
            if nextchar != ",":
                raise _Invalid("Expecting ',' delimiter or '}'", end - 1)
            comma = end - 1
            nextchar, end = self._skip(end)
            end += 1
            if nextchar != '"':
                if nextchar == "}":
                    raise _Invalid("Illegal trailing comma before end of object", comma)
                raise _Invalid("Expecting property name enclosed in double quotes", end - 1)

    def array(self, end: int) -> int:
        nextchar, end = self._skip(end)
        if nextchar == "]":
            return end + 1
        if nextchar == "":
            raise _Invalid("Expecting value or ']'", end)
        while True:
            nextchar, end = self._skip(self.value(end))
            end += 1
            if nextchar == "]":
                return end
            if nextchar != ",":
                raise _Invalid("Expecting ',' delimiter or ']'", end - 1)
            comma = end - 1
            nextchar, end = self._skip(end)
            if nextchar == "]":
                raise _Invalid("Illegal trailing comma before end of array", comma)


def describe(doc: str) -> Optional[str]:
    """The decoding error for doc, or None if this walk finds none."""
    try:
        _Walker(doc).document()
    except _Invalid as err:
        return _format(doc, err)
    except RecursionError:
        return None
    except ValueError as err:  # an integer with more digits than the interpreter converts
        return str(err)
    return None
