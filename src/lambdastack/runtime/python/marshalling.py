"""Event decoding and result encoding, with the output and error messages of the managed runtime.

The managed runtime encodes with simplejson; this module gets the same bytes from the standard
library's C encoder: Decimal values are written as their exact text, bytes as UTF-8 text,
named tuples (and anything with `_asdict`) as objects, NaN and Infinity allowed.
"""

from __future__ import annotations

import binascii
import decimal
import json
import math
import os
import re
from typing import Any, Callable, List, Optional, Tuple

from . import jsonerrors
from .errors import MARSHAL_ERROR, UNMARSHAL_ERROR, FaultException

JSON_CONTENT_TYPE = "application/json"
BYTES_CONTENT_TYPE = "application/unknown"

_SCALARS = frozenset((str, int, float, bool, type(None)))
_STR_KEYS = frozenset((str,))
_KEY_TYPES = (str, int, float)  # and None; bool is an int


class _Refused(Exception):
    """A constant (NaN, Infinity) simplejson's default decoder does not accept."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(name)


_decode = json.JSONDecoder(parse_constant=_refuse_constant).decode


def decode_event(body: bytes, content_type: Optional[str]) -> Any:
    """The event a handler receives: decoded JSON for `application/json`, the raw bytes otherwise."""
    if content_type != JSON_CONTENT_TYPE:
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FaultException(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)
    doc = text
    if text[:1] == "\ufeff":
        doc = text[1:]
    elif text[:3] == "\xef\xbb\xbf":
        doc = text[3:]
    try:
        return _decode(doc)
    except Exception as e:
        detail = jsonerrors.describe(text) or str(e)
        raise FaultException(UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % detail)


def _needs_rewrite(obj: Any) -> bool:
    """Whether obj holds something the standard encoder treats differently: a named tuple, an odd key."""
    t = type(obj)
    if t is dict:
        if set(map(type, obj.values())) <= _SCALARS and set(map(type, obj)) <= _STR_KEYS:
            return False
    elif t is list:
        if set(map(type, obj)) <= _SCALARS:
            return False
    elif t in _SCALARS:
        return False
    stack = [obj]
    seen = set()
    while stack:
        o = stack.pop()
        t = type(o)
        if t in _SCALARS:
            continue
        if isinstance(o, dict):
            if id(o) in seen:
                continue
            seen.add(id(o))
            if not set(map(type, o)) <= _STR_KEYS and any(_odd_key(k) for k in o):
                return True
            values: Any = o.values()
        elif isinstance(o, (list, tuple)):
            if id(o) in seen:
                continue
            seen.add(id(o))
            if isinstance(o, tuple) and callable(getattr(o, "_asdict", None)):
                return True
            values = o
        else:
            continue  # left to the encoder's default hook
        if not set(map(type, values)) <= _SCALARS:
            stack.extend(v for v in values if type(v) not in _SCALARS)
    return False


def _odd_key(key: Any) -> bool:
    return key is not None and not isinstance(key, _KEY_TYPES)


def _key(key: Any) -> Any:
    if isinstance(key, bytes):
        return key.decode("utf-8")
    if _odd_key(key):
        raise TypeError("keys must be str, int, float, bool or None, not %s" % key.__class__.__name__)
    return key


def _rewrite(obj: Any, active: "set[int]") -> Any:
    """A copy of obj in which named tuples are dicts, bytes keys are text and other keys are checked."""
    if type(obj) in _SCALARS:
        return obj
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in active:
            raise ValueError("Circular reference detected")
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                return {_key(k): _rewrite(v, active) for k, v in obj.items()}
            if isinstance(obj, tuple) and callable(getattr(obj, "_asdict", None)):
                return _rewrite(_asdict(obj), active)
            return [_rewrite(v, active) for v in obj]
        finally:
            active.discard(id(obj))
    return obj


def _asdict(obj: Any) -> dict:
    result = obj._asdict()
    if not isinstance(result, dict):
        raise TypeError("_asdict() must return a dict, not %s" % type(result).__name__)
    return result


def _encoder(ensure_ascii: bool, default: Callable[[Any], Any]) -> Callable[[Any], str]:
    """`JSONEncoder(ensure_ascii, allow_nan=True, default).encode`, calling the C encoder directly if present."""
    make = getattr(json.encoder, "c_make_encoder", None)
    strings = getattr(json.encoder, "c_encode_basestring_ascii" if ensure_ascii else "c_encode_basestring", None)
    if make is None or strings is None:
        return json.JSONEncoder(ensure_ascii=ensure_ascii, allow_nan=True, default=default).encode

    def encode(obj: Any) -> str:
        # markers (circular reference detection), default, strings, indent, separators, sort_keys, skipkeys, allow_nan
        return "".join(make({}, default, strings, None, ": ", ", ", False, False, True)(obj, 0))

    return encode


class JsonEncoder(object):
    """Encodes like the managed runtime's simplejson encoder (`ensure_ascii` depends on the runtime)."""

    def __init__(self, ensure_ascii: bool = True) -> None:
        self._raw: List[str] = []
        # Values that must appear verbatim are encoded as tagged strings and spliced in afterwards.
        nonce = binascii.hexlify(os.urandom(8)).decode()
        self._tag = "\x00" + nonce
        self._tagged = re.compile(r'"\\u0000' + nonce + r'(\d+)"')
        self._encode = _encoder(ensure_ascii, self._default)

    def _verbatim(self, text: str) -> str:
        self._raw.append(text)
        return self._tag + str(len(self._raw) - 1)

    def _default(self, o: Any) -> Any:
        if isinstance(o, bytes):
            return o.decode("utf-8")
        if type(o).__name__ == "RawJSON" and isinstance(getattr(o, "encoded_json", None), str):
            return self._verbatim(o.encoded_json)
        asdict = getattr(o, "_asdict", None)
        if asdict is not None and callable(asdict):
            result = _asdict(o)
            return _rewrite(result, set()) if _needs_rewrite(result) else result
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else self._verbatim(str(o))
        raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)

    def encode(self, obj: Any) -> str:
        if _needs_rewrite(obj):
            obj = _rewrite(obj, set())
        raw: List[str] = []
        self._raw = raw
        text = self._encode(obj)
        if raw:
            text = self._tagged.sub(lambda m: raw[int(m.group(1))], text)
        return text


def encode_result(encoder: JsonEncoder, result: Any) -> Tuple[bytes, str]:
    """The response body and its content type: bytes as they are, anything else as JSON."""
    if isinstance(result, bytes):
        return result, BYTES_CONTENT_TYPE
    try:
        return encoder.encode(result).encode("utf-8"), JSON_CONTENT_TYPE
    except Exception as e:
        raise FaultException(MARSHAL_ERROR, "Unable to marshal response: %s" % e)
