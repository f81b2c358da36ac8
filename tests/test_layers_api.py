"""Layer operations end to end through boto3 and the AWS CLI: shapes, ARNs, errors, lists,
deletion and version policies, as Lambda answers them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import ECHO, ROLE, Server, make_zip, python_zip, unique
from shapecheck import checked

ACCOUNT = "000000000000"
REGION = "us-east-1"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


@pytest.fixture
def lam(lam: Any) -> Iterator[Any]:
    with checked(lam):
        yield lam


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    e = info.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def layer_arn(name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}"
    return arn if version is None else f"{arn}:{version}"


def publish(lam: Any, name: str, files: dict[str, str | bytes] | None = None, **extra: Any) -> dict[str, Any]:
    return dict(lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip(files or {"a.txt": name})},
                                          **extra))


# -- publish and get ----------------------------------------------------------------------------


def test_publish_answers_with_lambdas_shape(lam: Any) -> None:
    name = unique("layer")
    package = make_zip({"python/util.py": "X = 1\n"})
    r = lam.publish_layer_version(
        LayerName=name,
        Content={"ZipFile": package},
        Description="shared helpers",
        CompatibleRuntimes=["python3.11", "python3.12"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert r["LayerArn"] == layer_arn(name)
    assert (r["LayerVersionArn"], r["Version"]) == (layer_arn(name, 1), 1)
    assert r["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert r["Content"]["CodeSize"] == len(package)
    assert TIMESTAMP.match(r["CreatedDate"])
    assert (r["Description"], r["LicenseInfo"]) == ("shared helpers", "MIT")
    assert r["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert r["CompatibleArchitectures"] == ["x86_64"]
    # Content.Location downloads the zip exactly as published.
    download = requests.get(r["Content"]["Location"], timeout=10)
    assert download.status_code == 200 and download.content == package

    second = publish(lam, name)
    assert (second["Version"], second["LayerVersionArn"]) == (2, layer_arn(name, 2))
    got = lam.get_layer_version(LayerName=name, VersionNumber=1)
    for key in ("LayerArn", "LayerVersionArn", "Version", "Description", "CreatedDate", "LicenseInfo",
                "CompatibleRuntimes", "CompatibleArchitectures"):
        assert got[key] == r[key], key
    assert got["Content"]["CodeSha256"] == r["Content"]["CodeSha256"]
    assert requests.get(got["Content"]["Location"], timeout=10).content == package
    by_arn = lam.get_layer_version_by_arn(Arn=layer_arn(name, 2))
    assert (by_arn["Version"], by_arn["LayerArn"]) == (2, layer_arn(name))
    # The layer may be named by its ARN too.
    assert lam.get_layer_version(LayerName=layer_arn(name), VersionNumber=2)["Version"] == 2


def test_missing_layers_and_versions(lam: Any) -> None:
    name = unique("layer")
    code, message, status = error_of(lam.get_layer_version, LayerName=name, VersionNumber=1)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == "The resource you requested does not exist."
    publish(lam, name)
    code, _, status = error_of(lam.get_layer_version, LayerName=name, VersionNumber=2)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.get_layer_version_by_arn, Arn=layer_arn(name, 7))
    assert (code, status) == ("ResourceNotFoundException", 404)
    # A layer of another account is not here.
    other = f"arn:aws:lambda:{REGION}:111111111111:layer:{name}:1"
    code, _, status = error_of(lam.get_layer_version_by_arn, Arn=other)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert lam.list_layer_versions(LayerName=unique("never"))["LayerVersions"] == []


def test_bad_content_is_refused(lam: Any) -> None:
    code, message, status = error_of(lam.publish_layer_version, LayerName=unique("layer"),
                                     Content={"ZipFile": b"not a zip"})
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "unzip" in message
    code, message, status = error_of(lam.publish_layer_version, LayerName=unique("layer"),
                                     Content={"S3Bucket": "bucket", "S3Key": "layer.zip"})
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "ZipFile" in message
    code, _, status = error_of(lam.publish_layer_version, LayerName="bad name!",
                               Content={"ZipFile": make_zip({"a": "b"})})
    assert (code, status) == ("ValidationException", 400)
    code, _, status = error_of(lam.publish_layer_version, LayerName=unique("layer"),
                               Content={"ZipFile": make_zip({"a": "b"})}, CompatibleRuntimes=["cobol85"])
    assert (code, status) == ("ValidationException", 400)
    # Nothing was published by the refused requests.
    assert lam.list_layer_versions(LayerName="bad")["LayerVersions"] == []


# -- lists ----------------------------------------------------------------------------------------


def test_list_layer_versions_newest_first_with_filters_and_pages(lam: Any) -> None:
    name = unique("layer")
    publish(lam, name, CompatibleRuntimes=["python3.11"], CompatibleArchitectures=["x86_64"])
    publish(lam, name, CompatibleRuntimes=["python3.12"], CompatibleArchitectures=["arm64"])
    publish(lam, name, CompatibleRuntimes=["python3.11", "python3.12"], Description="third", LicenseInfo="MIT")
    listed = lam.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [v["Version"] for v in listed] == [3, 2, 1]
    assert listed[0]["LayerVersionArn"] == layer_arn(name, 3)
    assert (listed[0]["Description"], listed[0]["LicenseInfo"]) == ("third", "MIT")
    assert TIMESTAMP.match(listed[0]["CreatedDate"])
    assert "Content" not in listed[0]
    only_311 = lam.list_layer_versions(LayerName=name, CompatibleRuntime="python3.11")["LayerVersions"]
    assert [v["Version"] for v in only_311] == [3, 1]
    arm = lam.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")["LayerVersions"]
    assert [v["Version"] for v in arm] == [2]
    both = lam.list_layer_versions(LayerName=name, CompatibleRuntime="python3.12", CompatibleArchitecture="arm64")
    assert [v["Version"] for v in both["LayerVersions"]] == [2]
    pages = list(lam.get_paginator("list_layer_versions").paginate(LayerName=name,
                                                                    PaginationConfig={"PageSize": 1}))
    assert [[v["Version"] for v in p["LayerVersions"]] for p in pages] == [[3], [2], [1]]
    assert "NextMarker" not in pages[-1]
    code, _, status = error_of(lam.list_layer_versions, LayerName=name, MaxItems=51)
    assert (code, status) == ("ValidationException", 400)


def test_list_layers_shows_the_latest_matching_version(lam: Any) -> None:
    prefix = unique("ll")
    a, b = f"{prefix}-a", f"{prefix}-b"
    publish(lam, a, CompatibleRuntimes=["python3.13"])
    publish(lam, a, CompatibleRuntimes=["python3.9"])
    publish(lam, b, CompatibleRuntimes=["python3.13"])
    everything = [layer for page in lam.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 2})
                  for layer in page["Layers"]]
    ours = {layer["LayerName"]: layer for layer in everything if layer["LayerName"].startswith(prefix)}
    assert set(ours) == {a, b}
    assert ours[a]["LayerArn"] == layer_arn(a)
    assert ours[a]["LatestMatchingVersion"]["Version"] == 2
    assert ours[a]["LatestMatchingVersion"]["LayerVersionArn"] == layer_arn(a, 2)
    names = [layer["LayerName"] for layer in everything]
    assert names == sorted(names) and len(names) == len(set(names))
    filtered = [layer for page in lam.get_paginator("list_layers").paginate(CompatibleRuntime="python3.13")
                for layer in page["Layers"] if layer["LayerName"].startswith(prefix)]
    assert {layer["LayerName"]: layer["LatestMatchingVersion"]["Version"] for layer in filtered} == {a: 1, b: 1}


# -- delete ---------------------------------------------------------------------------------------


def test_delete_layer_version_and_numbers_never_come_back(lam: Any) -> None:
    name = unique("layer")
    publish(lam, name)
    publish(lam, name)
    r = lam.delete_layer_version(LayerName=name, VersionNumber=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, _, _ = error_of(lam.get_layer_version, LayerName=name, VersionNumber=2)
    assert code == "ResourceNotFoundException"
    # Deleting what is not there is not an error, as on Lambda.
    assert lam.delete_layer_version(LayerName=name, VersionNumber=2)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.delete_layer_version(LayerName=unique("never"), VersionNumber=1)["ResponseMetadata"][
        "HTTPStatusCode"] == 204
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    assert lam.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert name not in [layer["LayerName"] for page in lam.get_paginator("list_layers").paginate()
                        for layer in page["Layers"]]
    assert publish(lam, name)["Version"] == 3


def test_deleted_layer_content_leaves_the_disk(server: Server, lam: Any) -> None:
    name = unique("layer")
    package = make_zip({"only-here.txt": name})
    sha = hashlib.sha256(package).hexdigest()
    lam.publish_layer_version(LayerName=name, Content={"ZipFile": package})
    assert (server.data_dir / "code" / sha).is_dir()
    lam.delete_layer_version(LayerName=name, VersionNumber=1)
    assert not (server.data_dir / "code" / sha).exists()
    assert not (server.data_dir / "blobs" / sha[:2] / sha).exists()


# -- policies -------------------------------------------------------------------------------------


def test_layer_version_policy_statements(lam: Any) -> None:
    name = unique("layer")
    publish(lam, name)
    code, message, status = error_of(lam.get_layer_version_policy, LayerName=name, VersionNumber=1)
    assert (code, status, message) == ("ResourceNotFoundException", 404,
                                       "No policy is associated with the given resource.")
    added = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="xaccount",
                                             Action="lambda:GetLayerVersion", Principal="123456789012")
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": layer_arn(name, 1),
    }
    org = lam.add_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="org",
                                           Action="lambda:GetLayerVersion", Principal="*",
                                           OrganizationId="o-abcdefghij", RevisionId=added["RevisionId"])
    assert json.loads(org["Statement"])["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    assert json.loads(org["Statement"])["Principal"] == "*"
    policy = lam.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert policy["RevisionId"] == org["RevisionId"] != added["RevisionId"]
    document = json.loads(policy["Policy"])
    assert (document["Version"], document["Id"]) == ("2012-10-17", "default")
    assert [s["Sid"] for s in document["Statement"]] == ["xaccount", "org"]

    code, message, status = error_of(lam.add_layer_version_permission, LayerName=name, VersionNumber=1,
                                     StatementId="xaccount", Action="lambda:GetLayerVersion", Principal="*")
    assert (code, status) == ("ResourceConflictException", 409)
    assert "xaccount" in message
    code, _, status = error_of(lam.add_layer_version_permission, LayerName=name, VersionNumber=1,
                               StatementId="late", Action="lambda:GetLayerVersion", Principal="*",
                               RevisionId=added["RevisionId"])
    assert (code, status) == ("PreconditionFailedException", 412)
    code, _, status = error_of(lam.add_layer_version_permission, LayerName=name, VersionNumber=1,
                               StatementId="bad", Action="lambda:InvokeFunction", Principal="*")
    assert (code, status) == ("ValidationException", 400)
    code, message, status = error_of(lam.add_layer_version_permission, LayerName=name, VersionNumber=9,
                                     StatementId="s", Action="lambda:GetLayerVersion", Principal="*")
    assert (code, status, message) == ("ResourceNotFoundException", 404,
                                       f"Layer version {layer_arn(name, 9)} does not exist.")

    code, message, status = error_of(lam.remove_layer_version_permission, LayerName=name, VersionNumber=1,
                                     StatementId="nope")
    assert (code, status, message) == ("ResourceNotFoundException", 404,
                                       "Statement nope is not found in resource policy.")
    code, _, status = error_of(lam.remove_layer_version_permission, LayerName=name, VersionNumber=1,
                               StatementId="org", RevisionId=added["RevisionId"])
    assert (code, status) == ("PreconditionFailedException", 412)
    removed = lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="org",
                                                  RevisionId=policy["RevisionId"])
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    left = json.loads(lam.get_layer_version_policy(LayerName=name, VersionNumber=1)["Policy"])
    assert [s["Sid"] for s in left["Statement"]] == ["xaccount"]
    lam.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="xaccount")
    code, _, status = error_of(lam.get_layer_version_policy, LayerName=name, VersionNumber=1)
    assert (code, status) == ("ResourceNotFoundException", 404)
    # A policy belongs to its version alone.
    publish(lam, name)
    code, _, _ = error_of(lam.get_layer_version_policy, LayerName=name, VersionNumber=2)
    assert code == "ResourceNotFoundException"


# -- functions naming layers ---------------------------------------------------------------------


def test_functions_name_existing_layer_versions_only(lam: Any) -> None:
    name = unique("layer")
    published = publish(lam, name, {"lib/x.txt": "x" * 1000})
    missing = layer_arn(name, 2)
    code, message, status = error_of(lam.create_function, FunctionName=unique(), Runtime="python3.12", Role=ROLE,
                                     Handler="app.handler", Code={"ZipFile": python_zip(ECHO)}, Layers=[missing])
    assert (code, status, message) == ("InvalidParameterValueException", 400,
                                       f"Layer version {missing} does not exist.")
    foreign = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{name}:1"
    code, _, _ = error_of(lam.create_function, FunctionName=unique(), Runtime="python3.12", Role=ROLE,
                          Handler="app.handler", Code={"ZipFile": python_zip(ECHO)}, Layers=[foreign])
    assert code == "InvalidParameterValueException"
    fn = unique()
    created = lam.create_function(FunctionName=fn, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": python_zip(ECHO)}, Layers=[published["LayerVersionArn"]])
    expected = [{"Arn": published["LayerVersionArn"], "CodeSize": published["Content"]["CodeSize"]}]
    assert created["Layers"] == expected
    assert lam.get_function(FunctionName=fn)["Configuration"]["Layers"] == expected
    code, _, _ = error_of(lam.update_function_configuration, FunctionName=fn, Layers=[missing])
    assert code == "InvalidParameterValueException"
    assert lam.get_function_configuration(FunctionName=fn)["Layers"] == expected


# -- the AWS CLI ------------------------------------------------------------------------------------

AWS = Path(sys.executable).with_name("aws")


def aws(server: Server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "lambda", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_layers_with_the_aws_cli(server: Server, tmp_path: Path) -> None:
    package = tmp_path / "layer.zip"
    package.write_bytes(make_zip({"python/cli_helper.py": "VALUE = 1\n"}))
    name = unique("cli-layer")
    r = aws(server, tmp_path, "publish-layer-version", "--layer-name", name, "--zip-file", f"fileb://{package}",
            "--compatible-runtimes", "python3.11", "python3.12", "--license-info", "MIT")
    assert r.returncode == 0, r.stderr
    published = json.loads(r.stdout)
    assert (published["Version"], published["LayerVersionArn"]) == (1, layer_arn(name, 1))
    r = aws(server, tmp_path, "list-layer-versions", "--layer-name", name)
    assert r.returncode == 0, r.stderr
    assert [v["Version"] for v in json.loads(r.stdout)["LayerVersions"]] == [1]
    r = aws(server, tmp_path, "add-layer-version-permission", "--layer-name", name, "--version-number", "1",
            "--statement-id", "everyone", "--action", "lambda:GetLayerVersion", "--principal", "*")
    assert r.returncode == 0, r.stderr
    r = aws(server, tmp_path, "get-layer-version", "--layer-name", name, "--version-number", "5")
    assert r.returncode != 0
    assert r.stderr.strip().endswith(
        "An error occurred (ResourceNotFoundException) when calling the GetLayerVersion operation: "
        "The resource you requested does not exist."
    )
    assert aws(server, tmp_path, "delete-layer-version", "--layer-name", name, "--version-number", "1").returncode == 0
