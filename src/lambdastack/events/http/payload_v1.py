"""Payload format version 1.0: the event of REST-era proxy integrations, and its answer.

This is the event Zappa, serverless-wsgi, apig-wsgi, Mangum and serverless-express read
(`resource`, `path`, `httpMethod`, `multiValueHeaders`, `multiValueQueryStringParameters`).
Single-value maps hold the last value of a repeated header or query parameter; the
multi-value maps hold them all. Cookies stay in the `cookie` header.

The answer must be an object with `statusCode`, and a string `body` if any; anything else
is a malformed answer (BadResponse), which API Gateway turns into a 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qsl

import orjson

from lambdastack.events.http.payload_v2 import BadResponse, answer, body_of, decoded, status_of, text_of
from lambdastack.events.http.request import HttpRequest, HttpResponse


def event(request: HttpRequest, *, api_id: str, domain: str, account_id: str, request_id: str,
          now: dt.datetime, resource: str, stage: str, path_parameters: dict[str, str] | None,
          stage_variables: dict[str, str] | None) -> dict[str, Any]:
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        lower = name.lower()
        headers[lower] = value
        multi_headers.setdefault(lower, []).append(value)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)
    body, encoded = body_of(request, headers.get("content-type", ""))
    return {
        "version": "1.0",
        "resource": resource,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {
                "accessKey": None, "accountId": None, "caller": None, "cognitoAmr": None,
                "cognitoAuthenticationProvider": None, "cognitoAuthenticationType": None,
                "cognitoIdentityId": None, "cognitoIdentityPoolId": None, "principalOrgId": None,
                "sourceIp": request.source_ip, "user": None, "userAgent": headers.get("user-agent", ""),
                "userArn": None,
            },
            "path": request.raw_path,
            "protocol": request.protocol,
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": f"{request.method} {resource}" if resource != "$default" else "$default",
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": path_parameters or None,
        "stageVariables": stage_variables or None,
        "body": body,
        "isBase64Encoded": encoded,
    }


def response(payload: bytes) -> HttpResponse:
    """The HTTP response a function's 1.0 answer makes; raises BadResponse."""
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadResponse("the result is not JSON")
    if not isinstance(result, dict) or "statusCode" not in result:
        raise BadResponse("a 1.0 answer must be an object with statusCode")
    status = status_of(result)
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    single = result.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise BadResponse("headers must be objects")
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower(), text_of(value)))
    for name, value in single.items():
        if name not in multi:
            headers.append((str(name).lower(), text_of(value)))
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise BadResponse("the body of a 1.0 answer must be a string")
    return answer(status, headers, decoded(body, result))
