"""Code signing configurations through the Lambda API: Lambda's shapes, statuses and errors
(as recorded against AWS), a function's configuration, and what `Enforce` refuses: every new
package, since no signature is known to lambdastack; `Warn` deploys."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import DEFAULT_RUNTIME, ROLE, Server, client_for, create_function, invoke_ok, make_zip, python_zip, unique

PROFILE = "arn:aws:signer:us-east-1:000000000000:/signing-profiles/team"


def new_config(lam: Any, policy: str | None = "Enforce", **params: Any) -> dict[str, Any]:
    if policy is not None:
        params["CodeSigningPolicies"] = {"UntrustedArtifactOnDeployment": policy}
    r = lam.create_code_signing_config(AllowedPublishers={"SigningProfileVersionArns": [PROFILE]}, **params)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    return dict(r["CodeSigningConfig"])


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    r = info.value.response
    return r["Error"]["Code"], r["Error"]["Message"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_configuration_lifecycle(lam: Any) -> None:
    created = new_config(lam, Description="release builds")
    arn = created["CodeSigningConfigArn"]
    assert arn == f"arn:aws:lambda:us-east-1:000000000000:code-signing-config:{created['CodeSigningConfigId']}"
    assert created["CodeSigningConfigId"].startswith("csc-") and len(created["CodeSigningConfigId"]) == 21
    assert created["AllowedPublishers"] == {"SigningProfileVersionArns": [PROFILE]}
    assert created["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Enforce"}
    assert created["Description"] == "release builds"
    assert created["LastModified"].endswith("+0000")
    # Warn is the default policy.
    assert new_config(lam, None)["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}

    updated = lam.update_code_signing_config(CodeSigningConfigArn=arn,
                                             CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["CodeSigningConfig"]["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert updated["CodeSigningConfig"]["Description"] == "release builds"
    # An update that changes nothing answers the configuration as it is.
    same = lam.update_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"]
    assert same == updated["CodeSigningConfig"]
    assert lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"] == same
    listed = [c for p in lam.get_paginator("list_code_signing_configs").paginate(PaginationConfig={"PageSize": 1})
              for c in p["CodeSigningConfigs"]]
    assert same in listed

    name = create_function(lam)
    put = lam.put_function_code_signing_config(FunctionName=name, CodeSigningConfigArn=arn)
    assert (put["CodeSigningConfigArn"], put["FunctionName"]) == (arn, name)
    got = lam.get_function_code_signing_config(FunctionName=name)
    assert (got["CodeSigningConfigArn"], got["FunctionName"]) == (arn, name)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [
        f"arn:aws:lambda:us-east-1:000000000000:function:{name}"]

    # In use: not deleted.
    code, _, status = error_of(lam.delete_code_signing_config, CodeSigningConfigArn=arn)
    assert (code, status) == ("ResourceConflictException", 409)

    deleted = lam.delete_function_code_signing_config(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "CodeSigningConfigArn" not in lam.get_function_code_signing_config(FunctionName=name)
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    assert lam.delete_code_signing_config(CodeSigningConfigArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.get_code_signing_config, CodeSigningConfigArn=arn) == (
        "ResourceNotFoundException", f"The Lambda code signing configuration {arn} can not be found.", 404)


def test_missing_resources_are_reported_as_aws_reports_them(lam: Any) -> None:
    arn = new_config(lam)["CodeSigningConfigArn"]
    invalid = arn[:-1] + ("x" if not arn.endswith("x") else "y")
    name = create_function(lam)
    gone = "csc-test-doesnotexist"
    not_found = ("ResourceNotFoundException", f"The Lambda code signing configuration {invalid} can not be found.", 404)
    function_not_found = (
        "ResourceNotFoundException", f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:{gone}", 404)
    csc_not_found = (
        "CodeSigningConfigNotFoundException",
        f"The code signing configuration cannot be found. Check that the provided configuration is not deleted: "
        f"{invalid}.", 404)
    assert error_of(lam.delete_code_signing_config, CodeSigningConfigArn=invalid) == not_found
    assert error_of(lam.update_code_signing_config, CodeSigningConfigArn=invalid, Description="x") == not_found
    assert error_of(lam.update_code_signing_config, CodeSigningConfigArn=invalid) == not_found
    assert error_of(lam.get_code_signing_config, CodeSigningConfigArn=invalid) == not_found
    assert error_of(lam.list_functions_by_code_signing_config, CodeSigningConfigArn=invalid) == not_found
    assert lam.delete_function_code_signing_config(FunctionName=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.delete_function_code_signing_config, FunctionName=gone) == function_not_found
    assert error_of(lam.get_function_code_signing_config, FunctionName=gone) == function_not_found
    assert error_of(lam.put_function_code_signing_config, FunctionName=gone,
                    CodeSigningConfigArn=arn) == function_not_found
    assert error_of(lam.put_function_code_signing_config, FunctionName=name,
                    CodeSigningConfigArn=invalid) == csc_not_found
    assert error_of(lam.put_function_code_signing_config, FunctionName=gone,
                    CodeSigningConfigArn=invalid) == csc_not_found
    assert error_of(lam.create_function, FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                    Handler="app.handler", Code={"ZipFile": python_zip("x = 1\n")},
                    CodeSigningConfigArn=invalid) == csc_not_found


def test_the_model_constraints_are_checked_by_the_server(server: Server) -> None:
    raw = client_for(server.url, parameter_validation=False)
    code, _, status = error_of(raw.create_code_signing_config, AllowedPublishers={"SigningProfileVersionArns": []})
    assert (code, status) == ("ValidationException", 400)
    code, _, status = error_of(raw.create_code_signing_config, AllowedPublishers={"SigningProfileVersionArns": [
        PROFILE]}, CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Sometimes"})
    assert (code, status) == ("ValidationException", 400)


UNVERIFIED = ("Lambda cannot deploy the function. The function or layer might be signed using a signature that the "
              "client is not configured to accept. Check the provided signature for "
              "arn:aws:lambda:us-east-1:000000000000:function:{}.")


def test_enforce_refuses_unsigned_code_and_warn_deploys_it(lam: Any) -> None:
    enforce = new_config(lam, "Enforce")["CodeSigningConfigArn"]
    warn = new_config(lam, "Warn")["CodeSigningConfigArn"]
    package = python_zip("def handler(event, context):\n    return 'v1'\n")

    name = unique()
    assert error_of(lam.create_function, FunctionName=name, Runtime=DEFAULT_RUNTIME, Role=ROLE,
                    Handler="app.handler", Code={"ZipFile": package}, CodeSigningConfigArn=enforce) == (
        "CodeVerificationFailedException", UNVERIFIED.format(name), 400)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)

    # Warn: deployed, and the function has the configuration.
    lam.create_function(FunctionName=name, Runtime=DEFAULT_RUNTIME, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": package}, CodeSigningConfigArn=warn)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert lam.get_function_code_signing_config(FunctionName=name)["CodeSigningConfigArn"] == warn
    assert invoke_ok(lam, name, {}) == "v1"

    # Enforce attached to a function whose code is unsigned: the code keeps running, new code is refused.
    lam.put_function_code_signing_config(FunctionName=name, CodeSigningConfigArn=enforce)
    assert invoke_ok(lam, name, {}) == "v1"
    before = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
    assert error_of(lam.update_function_code, FunctionName=name,
                    ZipFile=python_zip("def handler(event, context):\n    return 'v2'\n")) == (
        "CodeVerificationFailedException", UNVERIFIED.format(name), 400)
    layer = lam.publish_layer_version(LayerName=unique("layer"), Content={"ZipFile": make_zip({"a.txt": "a"})})
    assert error_of(lam.update_function_configuration, FunctionName=name,
                    Layers=[layer["LayerVersionArn"]])[0] == "CodeVerificationFailedException"
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == before
    # Settings that bring no code are changed as usual.
    lam.update_function_configuration(FunctionName=name, Description="still v1")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == "v1"

    # Back to Warn: the update goes through.
    lam.update_code_signing_config(CodeSigningConfigArn=enforce,
                                   CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Warn"})
    lam.update_function_code(FunctionName=name, ZipFile=python_zip("def handler(event, context):\n    return 'v2'\n"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == "v2"

    # The configuration goes with the function; then it can be deleted.
    lam.delete_function(FunctionName=name)
    lam.delete_code_signing_config(CodeSigningConfigArn=enforce)
    lam.delete_code_signing_config(CodeSigningConfigArn=warn)


def test_configurations_and_links_survive_a_restart(tmp_path: Any) -> None:
    server = Server(tmp_path / "data").start()
    try:
        lam = server.client()
        arn = new_config(lam, "Enforce", Description="kept")["CodeSigningConfigArn"]
        name = create_function(lam)
        lam.put_function_code_signing_config(FunctionName=name, CodeSigningConfigArn=arn)
        before = lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"]
        server.stop()
        server.start()
        lam = server.client()
        assert lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"] == before
        assert lam.get_function_code_signing_config(FunctionName=name)["CodeSigningConfigArn"] == arn
        assert error_of(lam.update_function_code, FunctionName=name, ZipFile=python_zip("x = 2\n"))[0] == (
            "CodeVerificationFailedException")
    finally:
        server.stop()


def test_configurations_take_tags(lam: Any) -> None:
    arn = new_config(lam, Tags={"team": "core"})["CodeSigningConfigArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}
    lam.tag_resource(Resource=arn, Tags={"stage": "prod"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core", "stage": "prod"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"stage": "prod"}
    gone = arn[:-1] + ("x" if not arn.endswith("x") else "y")
    assert error_of(lam.list_tags, Resource=gone) == (
        "ResourceNotFoundException", f"The Lambda code signing configuration {gone} can not be found.", 404)
