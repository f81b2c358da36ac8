"""Payload format version 2.0: the event a function behind a URL or an HTTP API gets, and its answer.

The answer is read as Lambda's URLs and HTTP APIs read it: an object with `statusCode` says
everything itself (headers, cookies, body, isBase64Encoded); any other JSON is the body of a
200 `application/json` answer.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lambdastack.events.http.request import CONNECTION_HEADERS, HttpRequest, HttpResponse, is_text


class BadResponse(Exception):
    """The function's answer is not one Lambda could turn into an HTTP response."""


def event(request: HttpRequest, *, api_id: str, domain: str, account_id: str, request_id: str,
          now: dt.datetime, route_key: str = "$default", stage: str = "$default",
          path_parameters: dict[str, str] | None = None,
          stage_variables: dict[str, str] | None = None,
          authorizer: dict[str, Any] | None = None) -> dict[str, Any]:
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
        "routeKey": route_key,
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
        "apiId": api_id,
        **({"authorizer": authorizer} if authorizer is not None else {}),
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if path_parameters:
        out["pathParameters"] = path_parameters
    if stage_variables:
        out["stageVariables"] = stage_variables
    out["body"], out["isBase64Encoded"] = body_of(request, headers.get("content-type", ""))
    if out["body"] is None:
        del out["body"]
    return out


def body_of(request: HttpRequest, content_type: str) -> tuple[str | None, bool]:
    """The request body as an event carries it: text as it is, anything else in base64."""
    if not request.body:
        return None, False
    if is_text(content_type):
        try:
            return request.body.decode(), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def response(payload: bytes) -> HttpResponse:
    """The HTTP response a function's result makes; raises BadResponse."""
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadResponse("the result is not JSON")
    if not isinstance(result, dict) or "statusCode" not in result:
        return HttpResponse(200, [("content-type", "application/json")], payload)
    status = status_of(result)
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name).lower(), text_of(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower(), text_of(value)))
    for cookie in result.get("cookies") or ():
        headers.append(("set-cookie", text_of(cookie)))
    body = result.get("body")
    raw = orjson.dumps(body) if body is not None and not isinstance(body, str) else decoded(body, result)
    return answer(status, headers, raw)


def status_of(result: dict[str, Any]) -> int:
    """An answer's `statusCode` (a number, or digits); raises BadResponse."""
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise BadResponse("statusCode is not an HTTP status")
    return status


def decoded(body: str | None, result: dict[str, Any]) -> bytes:
    """A string body's bytes, from base64 if `isBase64Encoded`; raises BadResponse."""
    if body is None:
        return b""
    if not result.get("isBase64Encoded"):
        return body.encode()
    try:
        return base64.b64decode(body)  # lenient, as API Gateway: line breaks in it are fine
    except ValueError:
        raise BadResponse("isBase64Encoded, but the body is not base64")


def answer(status: int, headers: list[tuple[str, str]], body: bytes) -> HttpResponse:
    """The response: the function's headers but the connection's own, JSON unless it says otherwise."""
    kept = [(name, value) for name, value in headers if name not in CONNECTION_HEADERS]
    if not any(name == "content-type" for name, _ in kept):
        kept.append(("content-type", "application/json"))
    return HttpResponse(status, kept, body)


def text_of(value: Any) -> str:
    """A header value as JSON gave it, as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
