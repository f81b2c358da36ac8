"""What destinations and dead-letter queues receive about an asynchronous invocation.

A destination gets Lambda's invocation record (`version`, `timestamp`, `requestContext`,
`requestPayload`, `responseContext`, `responsePayload`); a dead-letter queue gets the
original event with the message attributes `RequestID`, `ErrorCode` and `ErrorMessage`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from lambdastack.invoke.async_state import LastResult

ERROR_MESSAGE_LIMIT = 1024  # a dead letter carries the first 1 KB of the error message


def _json_or_text(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")


def timestamp(at: float) -> str:
    moment = dt.datetime.fromtimestamp(at, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def invocation_record(
    *,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    payload: bytes,
    result: LastResult | None,
    at: float,
) -> dict[str, Any]:
    """`function_arn` carries the invoked qualifier ($LATEST when none was given)."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": timestamp(at),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": _json_or_text(payload),
    }
    if result is not None:
        context: dict[str, Any] = {"statusCode": result.status_code}
        if result.executed_version:
            context["executedVersion"] = result.executed_version
        if result.function_error:
            context["functionError"] = result.function_error
        record["responseContext"] = context
        if result.response_b64:
            record["responsePayload"] = _json_or_text(result.response)
    return record


def dead_letter_attributes(request_id: str, result: LastResult | None, condition: str) -> dict[str, dict[str, str]]:
    """Message attributes as SQS and SNS take them (DataType / StringValue)."""
    if result is not None:
        code = result.status_code
        message = result.error_message or result.error_type or condition
    else:
        code, message = 200, condition
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": str(code)},
        "ErrorMessage": {"DataType": "String", "StringValue": message.encode()[:ERROR_MESSAGE_LIMIT].decode(
            "utf-8", "ignore") or condition},
    }
