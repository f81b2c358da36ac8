"""Functions' resource-based policies through the Lambda API: AddPermission, RemovePermission and
GetPolicy with Lambda's statement shapes, revision ids, conditions and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import create_function, unique


def _error(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(Exception) as raised:
        call(**params)
    response = raised.value.response  # type: ignore[attr-defined]
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_statements_as_lambda_writes_them(lam: Any) -> None:
    name = create_function(lam)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    added = lam.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                               Principal="*", FunctionUrlAuthType="NONE")
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "public-url", "Effect": "Allow", "Principal": "*", "Action": "lambda:InvokeFunctionUrl",
        "Resource": arn, "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}}
    lam.add_permission(FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::my-bucket", SourceAccount="123456789012")
    lam.add_permission(FunctionName=name, StatementId="account", Action="lambda:GetFunction",
                       Principal="123456789012")
    lam.add_permission(FunctionName=name, StatementId="org", Action="lambda:InvokeFunction", Principal="*",
                       PrincipalOrgID="o-a1b2c3d4e5")
    got = lam.get_policy(FunctionName=name)
    policy = json.loads(got["Policy"])
    assert (policy["Version"], policy["Id"]) == ("2012-10-17", "default")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert list(by_sid) == ["public-url", "s3", "account", "org"]
    assert by_sid["s3"]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert by_sid["s3"]["Condition"] == {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                                         "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}}
    assert by_sid["account"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert by_sid["org"]["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}

    # Revision ids: a stale one is refused, the current one accepted.
    revision = got["RevisionId"]
    lam.remove_permission(FunctionName=name, StatementId="account", RevisionId=revision)
    code, _, status = _error(lam.remove_permission, FunctionName=name, StatementId="org", RevisionId=revision)
    assert (code, status) == ("PreconditionFailedException", 412)
    for sid in ("public-url", "s3", "org"):
        assert lam.remove_permission(FunctionName=name, StatementId=sid)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(lam.get_policy, FunctionName=name) == (
        "ResourceNotFoundException", "The resource you requested does not exist.", 404)


def test_errors(lam: Any) -> None:
    name = create_function(lam)
    lam.add_permission(FunctionName=name, StatementId="one", Action="lambda:InvokeFunction", Principal="*")
    assert _error(lam.add_permission, FunctionName=name, StatementId="one", Action="lambda:InvokeFunction",
                  Principal="*") == (
        "ResourceConflictException",
        "The statement id (one) provided already exists. Please provide a new statement id, or remove the existing "
        "statement.", 409)
    assert _error(lam.remove_permission, FunctionName=name, StatementId="two") == (
        "ResourceNotFoundException", "Statement two is not found in resource policy.", 404)
    code, message, status = _error(lam.add_permission, FunctionName=name, StatementId="bad", Action="invoke",
                                   Principal="*")
    assert (code, status) == ("ValidationException", 400) and "action" in message
    code, _, status = _error(lam.add_permission, FunctionName=name, StatementId="org", Action="lambda:InvokeFunction",
                             Principal="123456789012", PrincipalOrgID="o-a1b2c3d4e5")
    assert (code, status) == ("InvalidParameterValueException", 400)
    missing = unique()
    for call, params in ((lam.remove_permission, {"StatementId": "x"}),
                         (lam.add_permission, {"StatementId": "x", "Action": "lambda:InvokeFunction",
                                               "Principal": "*"})):
        code, message, status = _error(call, FunctionName=missing, **params)
        assert (code, status) == ("ResourceNotFoundException", 404) and missing in message
    # GetPolicy answers alike for a missing function and a function without a policy (AWS, recorded).
    assert _error(lam.get_policy, FunctionName=missing) == (
        "ResourceNotFoundException", "The resource you requested does not exist.", 404)


def test_each_qualifier_has_its_own_policy(lam: Any) -> None:
    name = create_function(lam)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.add_permission(FunctionName=name, Qualifier="live", StatementId="live-only", Action="lambda:InvokeFunction",
                       Principal="*")
    live = json.loads(lam.get_policy(FunctionName=name, Qualifier="live")["Policy"])["Statement"]
    assert [s["Resource"].rsplit(":", 1)[1] for s in live] == ["live"]
    assert _error(lam.get_policy, FunctionName=name)[0] == "ResourceNotFoundException"
    lam.add_permission(FunctionName=name, Qualifier=version, StatementId="v", Action="lambda:InvokeFunction",
                       Principal="*")
    assert json.loads(lam.get_policy(FunctionName=name, Qualifier=version)["Policy"])["Statement"][0]["Sid"] == "v"
    # The alias's policy goes with the alias.
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    assert _error(lam.get_policy, FunctionName=name, Qualifier="live")[0] == "ResourceNotFoundException"
