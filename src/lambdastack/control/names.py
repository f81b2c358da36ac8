"""Function names as Lambda accepts them, and the ARNs Lambda answers with.

A function may be named by its bare name (`my-fn`), a partial ARN
(`123456789012:function:my-fn`) or a full ARN (`arn:aws:lambda:us-east-1:123456789012:
function:my-fn`), each optionally followed by `:qualifier` (`$LATEST`, a version number or
an alias name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdastack import errors
from lambdastack.control.limits import validation_error
from lambdastack.store.records import LATEST

MAX_NAME = 64
_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_QUALIFIER = re.compile(r"\$LATEST|[a-zA-Z0-9_-]+")
_REGION = re.compile(r"(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d")
_ACCOUNT = re.compile(r"\d{12}")
_VERSION = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class FunctionRef:
    """A function named in a request, resolved against the caller's account and region."""

    account: str
    region: str
    name: str
    qualifier: str | None = None

    @property
    def arn(self) -> str:
        return function_arn(self.account, self.region, self.name)


def function_arn(account: str, region: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def is_version_number(qualifier: str) -> bool:
    return bool(_VERSION.fullmatch(qualifier))


def could_be_alias(qualifier: str) -> bool:
    """Whether an alias could have this name (the model's alias pattern: not all digits)."""
    return bool(_NAME.fullmatch(qualifier)) and not is_version_number(qualifier)


def is_version(qualifier: str) -> bool:
    return qualifier == LATEST or is_version_number(qualifier)


def parse_function_name(
    text: str,
    account: str,
    region: str,
    *,
    qualifier: str | None = None,
    member: str = "functionName",
) -> FunctionRef:
    """Resolve `text` (name, partial or full ARN, maybe qualified) plus an optional `?Qualifier=`.

    An ARN of another account or region names a function that does not exist here (404).
    """
    parts = text.split(":")
    region_part: str | None = None
    account_part: str | None = None
    if parts[0] == "arn":
        # arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]; as in the model's
        # pattern, `function:` may be left out, so `arn:aws:lambda:<region>:<account>:function` names
        # a function called "function" (AWS answers so).
        if len(parts) == 6 and parts[2] == "lambda":
            parts = [*parts[:5], "function", parts[5]]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            raise errors.InvalidParameterValue(f"Invalid function ARN: {text}")
        region_part, account_part, rest = parts[3], parts[4], parts[6:]
    elif "function" in parts[:3] and len(parts) >= 3:
        # [<region>:]<account>:function:<name>[:<qualifier>]
        idx = parts.index("function")
        prefix, rest = parts[:idx], parts[idx + 1 :]
        if len(prefix) == 2:
            region_part, account_part = prefix
        elif len(prefix) == 1:
            account_part = prefix[0]
        else:
            raise errors.InvalidParameterValue(f"Invalid function name: {text}")
        if not rest:
            raise errors.InvalidParameterValue(f"Invalid function name: {text}")
    else:
        rest = parts
    if len(rest) not in (1, 2):
        raise errors.InvalidParameterValue(f"Invalid function name: {text}")
    name = rest[0]
    name_qualifier = rest[1] if len(rest) == 2 else None
    if region_part is not None and not _REGION.fullmatch(region_part):
        raise errors.InvalidParameterValue(f"Invalid region in function ARN: {text}")
    if account_part is not None and not _ACCOUNT.fullmatch(account_part):
        raise errors.InvalidParameterValue(f"Invalid account in function ARN: {text}")
    if not _NAME.fullmatch(name):
        raise validation_error(text, member, f"Member must satisfy regular expression pattern: {_NAME.pattern}")
    if name_qualifier is not None and not _QUALIFIER.fullmatch(name_qualifier):
        raise errors.InvalidParameterValue(f"Invalid qualifier in function name: {text}")
    if name_qualifier is not None and qualifier is not None and name_qualifier != qualifier:
        raise errors.InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    if region_part is not None and region_part != region:
        raise errors.ResourceNotFound(f"Functions from '{region_part}' are not reachable in this region ('{region}')")
    if account_part is not None and account_part != account:
        q = name_qualifier or qualifier
        arn = function_arn(account_part or account, region_part or region, name, q)
        raise errors.ResourceNotFound(f"Function not found: {arn}")
    return FunctionRef(account, region, name, name_qualifier or qualifier)


def unqualified(ref: FunctionRef, operation: str) -> FunctionRef:
    """Refuse a qualifier where the operation acts on the function itself ($LATEST is allowed)."""
    if ref.qualifier not in (None, LATEST):
        raise errors.InvalidParameterValue(
            f"The {operation} operation does not accept a qualified function name: {ref.name}:{ref.qualifier}"
        )
    return FunctionRef(ref.account, ref.region, ref.name)


@dataclass(frozen=True)
class ResourceArn:
    account: str
    region: str
    kind: str
    name: str
    qualifier: str | None


def parse_resource_arn(text: str) -> ResourceArn:
    """A full Lambda ARN (`arn:aws:lambda:<region>:<account>:<kind>:<name>[:<qualifier>]`)."""
    parts = text.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda" or len(parts) > 8:
        raise errors.InvalidParameterValue(f"Invalid ARN: {text}")
    return ResourceArn(parts[4], parts[3], parts[5], parts[6], parts[7] if len(parts) == 8 else None)
