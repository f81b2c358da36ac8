"""A request as Lambda hands it to a function behind a URL, and the answer Lambda reads back.

The request becomes API Gateway's payload format version 2.0. The answer is read as Lambda's
URLs read it: an object with `statusCode` says everything itself (headers, cookies, body,
isBase64Encoded); any other JSON is the body of a 200 `application/json` answer.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
TEXT_SUFFIXES = ("+json", "+xml")


@dataclass
class UrlRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # as received, names in any case, repeated as sent
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass
class UrlResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class BadResponse(Exception):
    """The function's answer is not one Lambda could turn into an HTTP response."""


def is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(TEXT_TYPES) or kind.endswith(TEXT_SUFFIXES)


def event(request: UrlRequest, *, url_id: str, domain: str, account_id: str, request_id: str,
          now: dt.datetime) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    out: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        out["cookies"] = cookies
    out["headers"] = headers
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        out["queryStringParameters"] = query
    out["requestContext"] = {
        "accountId": account_id,
        "apiId": url_id,
        "domainName": domain,
        "domainPrefix": url_id,
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if request.body:
        if is_text(headers.get("content-type", "")):
            try:
                out["body"] = request.body.decode()
                out["isBase64Encoded"] = False
            except UnicodeDecodeError:
                out["body"] = base64.b64encode(request.body).decode()
                out["isBase64Encoded"] = True
        else:
            out["body"] = base64.b64encode(request.body).decode()
            out["isBase64Encoded"] = True
    else:
        out["isBase64Encoded"] = False
    return out


def response(payload: bytes) -> UrlResponse:
    """The HTTP response a function's result makes; raises BadResponse."""
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadResponse("the result is not JSON")
    if not isinstance(result, dict) or "statusCode" not in result:
        return UrlResponse(200, [("content-type", "application/json")], payload)
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadResponse("statusCode is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name).lower(), _text(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower(), _text(value)))
    for cookie in result.get("cookies") or ():
        headers.append(("set-cookie", _text(cookie)))
    body = result.get("body")
    if body is None:
        raw = b""
    elif isinstance(body, str):
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    else:
        raw = orjson.dumps(body)
    if not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return UrlResponse(status, headers, raw)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
