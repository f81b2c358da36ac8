"""Function URL configurations through the Lambda API: boto3 and the AWS CLI, Lambda's shapes,
validation and errors. (Requests to the URLs themselves are not served yet.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import Server, create_function, unique
from test_control_cli import aws, ok

URL = re.compile(r"http://[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:\d+/")


def _error(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(Exception) as raised:
        call(**params)
    response = raised.value.response  # type: ignore[attr-defined]
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_update_list_delete(lam: Any, server: Server) -> None:
    name = create_function(lam)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    created = lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert URL.fullmatch(created["FunctionUrl"]) and created["FunctionUrl"].endswith(f":{server.port}/")
    assert created["FunctionArn"] == arn
    assert created["AuthType"] == "NONE" and "InvokeMode" not in created  # AWS names it only when asked
    assert "Cors" not in created and "LastModifiedTime" not in created
    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == created["FunctionUrl"] and got["CreationTime"] == created["CreationTime"]
    assert got["LastModifiedTime"] == got["CreationTime"]

    cors = {"AllowOrigins": ["https://example.test"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-a"],
            "ExposeHeaders": ["x-b"], "AllowCredentials": True, "MaxAge": 300}
    updated = lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM", Cors=cors,
                                             InvokeMode="RESPONSE_STREAM")
    assert (updated["AuthType"], updated["InvokeMode"], updated["Cors"]) == ("AWS_IAM", "RESPONSE_STREAM", cors)
    assert updated["FunctionUrl"] == created["FunctionUrl"] and updated["LastModifiedTime"] > updated["CreationTime"]
    # Members not given stay as they were.
    assert lam.update_function_url_config(FunctionName=name, AuthType="NONE")["Cors"] == cors

    listed = lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert [u["FunctionUrl"] for u in listed] == [created["FunctionUrl"]]
    assert lam.delete_function_url_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(lam.get_function_url_config, FunctionName=name) == (
        "ResourceNotFoundException", "The resource you requested does not exist.", 404)
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []


def test_one_url_per_target_and_lambdas_errors(lam: Any) -> None:
    name = create_function(lam)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    lam.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert _error(lam.create_function_url_config, FunctionName=name, AuthType="AWS_IAM") == (
        "ResourceConflictException",
        f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
        "FunctionUrlConfig exists for this Lambda function", 409)
    for qualifier in ("1", "$LATEST"):
        code, message, status = _error(lam.create_function_url_config, FunctionName=name, Qualifier=qualifier,
                                       AuthType="NONE")
        assert (code, status) == ("ValidationException", 400)
        assert f"Value '{qualifier}' at 'qualifier' failed to satisfy constraint" in message
    code, message, status = _error(lam.create_function_url_config, FunctionName=name, AuthType="OPEN")
    assert (code, status) == ("ValidationException", 400) and "authType" in message
    assert _error(lam.create_function_url_config, FunctionName=name, Qualifier="nope", AuthType="NONE") == (
        "ResourceNotFoundException", "Function does not exist", 404)  # AWS's words (tests/conformance)
    missing = unique()
    code, message, status = _error(lam.list_function_url_configs, FunctionName=missing)
    assert (code, status, message) == ("ResourceNotFoundException", 404, "Function does not exist")
    # Get and Delete answer as for a function without a URL (AWS's answers, recorded).
    for call in (lam.get_function_url_config, lam.delete_function_url_config):
        assert _error(call, FunctionName=missing) == (
            "ResourceNotFoundException", "The resource you requested does not exist.", 404)
    code, _, status = _error(lam.update_function_url_config, FunctionName=unique(), AuthType="NONE")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_alias_urls_go_with_their_alias_and_all_with_the_function(lam: Any) -> None:
    name = create_function(lam)
    version = lam.publish_version(FunctionName=name)["Version"]
    for alias in ("live", "beta"):
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
    own = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    live = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="AWS_IAM")
    assert live["FunctionArn"].endswith(f":function:{name}:live") and live["FunctionUrl"] != own
    lam.create_function_url_config(FunctionName=name, Qualifier="beta", AuthType="NONE")
    # Pages, in qualifier order (the function's own first).
    first = lam.list_function_url_configs(FunctionName=name, MaxItems=2)
    rest = lam.list_function_url_configs(FunctionName=name, Marker=first["NextMarker"])
    arns = [u["FunctionArn"] for u in first["FunctionUrlConfigs"] + rest["FunctionUrlConfigs"]]
    assert [a.split(f":function:{name}")[1] for a in arns] == ["", ":beta", ":live"]
    assert "NextMarker" not in rest
    # Deleting an alias deletes its URL: made again, the alias can have a new one.
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    again = lam.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE")
    assert again["FunctionUrl"] != live["FunctionUrl"]
    # Deleting the function deletes them all.
    lam.delete_function(FunctionName=name)
    create_function(lam, name=name)
    assert lam.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []


def test_aws_cli(server: Server, lam: Any, tmp_path: Path) -> None:
    name = create_function(lam)
    created = ok(aws(server, tmp_path, "create-function-url-config", "--function-name", name, "--auth-type", "NONE",
                     "--cors", "AllowOrigins=*,MaxAge=60"))
    assert URL.fullmatch(created["FunctionUrl"]) and created["Cors"] == {"AllowOrigins": ["*"], "MaxAge": 60}
    got = ok(aws(server, tmp_path, "get-function-url-config", "--function-name", name))
    assert got["FunctionUrl"] == created["FunctionUrl"]
    ok(aws(server, tmp_path, "delete-function-url-config", "--function-name", name))
    failed = aws(server, tmp_path, "get-function-url-config", "--function-name", name)
    assert failed.returncode != 0 and failed.stderr.strip().endswith(
        "An error occurred (ResourceNotFoundException) when calling the GetFunctionUrlConfig operation: "
        "The resource you requested does not exist.")
