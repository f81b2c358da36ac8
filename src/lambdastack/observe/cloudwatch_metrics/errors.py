"""CloudWatch's errors as its json protocol sends them in query-compatible mode: the shape's name
as `__type`, and the query error code in `x-amzn-query-error` (what botocore reports as the
error's Code: `InvalidParameterValue`, `MissingParameter` ...)."""

from __future__ import annotations

from typing import Any

from lambdastack.errors import LambdaError


class CloudWatchError(LambdaError):
    status = 400
    query_code = "InvalidParameterValue"

    def __init__(self, message: str, **members: Any) -> None:
        super().__init__(message, headers={"x-amzn-query-error": f"{self.query_code};Sender"}, **members)


class InvalidParameterValue(CloudWatchError):
    code = "InvalidParameterValueException"
    query_code = "InvalidParameterValue"


class MissingParameter(CloudWatchError):
    code = "MissingRequiredParameterException"
    query_code = "MissingParameter"


class InvalidParameterCombination(CloudWatchError):
    code = "InvalidParameterCombinationException"
    query_code = "InvalidParameterCombination"


class InvalidNextToken(CloudWatchError):
    code = "InvalidNextToken"
    query_code = "InvalidNextToken"
