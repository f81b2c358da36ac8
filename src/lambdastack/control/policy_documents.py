"""Resource-based policy documents as Lambda writes them (functions' and layer versions')."""

from __future__ import annotations

import re
from typing import Any

import orjson

from lambdastack import errors

POLICY_MAX_BYTES = 20 * 1024
DUPLICATE_SID = ("The statement id ({sid}) provided already exists. Please provide a new statement id, "
                 "or remove the existing statement.")


def principal(value: str) -> Any:
    """`*`, an account id, a service (`s3.amazonaws.com`) or an ARN, as a statement's Principal."""
    if value == "*":
        return "*"
    if value.isdigit():
        return {"AWS": f"arn:aws:iam::{value}:root"}
    if value.endswith(".amazonaws.com") or value.endswith(".amazonaws.com.cn"):
        return {"Service": value}
    if re.fullmatch(r"arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:.+", value):
        return {"AWS": value}
    raise errors.InvalidParameterValue("The provided principal was invalid. Please check the principal and try again.")


def document(statements: list[dict[str, Any]]) -> str:
    return orjson.dumps({"Version": "2012-10-17", "Id": "default", "Statement": statements}).decode()


def too_long(statements: list[dict[str, Any]]) -> bool:
    return len(document(statements).encode()) > POLICY_MAX_BYTES
