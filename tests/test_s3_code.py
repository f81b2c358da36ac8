"""Deployment packages in Amazon S3 (`Code.S3Bucket/S3Key/S3ObjectVersion`), read from moto's S3
through `serve --aws-endpoint-url`: functions and layers created and updated from S3, versioned
buckets, Lambda's errors for every bad location, and code that outlives its S3 object."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import DEFAULT_RUNTIME, ROLE, Server, invoke_ok, make_zip, python_zip, unique
from moto_helpers import Aws

AWS_CLI = Path(sys.executable).with_name("aws")


def says(word: str) -> bytes:
    return python_zip(f"def handler(event, context):\n    return {{'says': {word!r}}}\n")


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="module")
def srv(moto_backed_server: Server) -> Server:
    return moto_backed_server


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


@pytest.fixture
def bucket(aws: Aws) -> str:
    name = unique("code")
    aws.s3.create_bucket(Bucket=name)
    return name


def create_from_s3(lam: Any, bucket: str, key: str, name: str | None = None, **code: Any) -> dict[str, Any]:
    name = name or unique()
    created = lam.create_function(FunctionName=name, Runtime=DEFAULT_RUNTIME, Role=ROLE, Handler="app.handler",
                                  Code={"S3Bucket": bucket, "S3Key": key, **code})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return dict(created)


def refused(call: Any, **params: Any) -> tuple[str, str, int]:
    try:
        call(**params)
    except ClientError as e:
        response = e.response
        return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the request was accepted")


def test_create_from_s3_copies_the_object(lam: Any, aws: Aws, bucket: str) -> None:
    package = says("from s3")
    aws.s3.put_object(Bucket=bucket, Key="builds/app.zip", Body=package)
    created = create_from_s3(lam, bucket, "builds/app.zip")
    name = created["FunctionName"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (created["CodeSha256"], created["CodeSize"]) == (sha(package), len(package))
    assert invoke_ok(lam, name, {}) == {"says": "from s3"}
    # GetFunction hands back the package itself, from lambdastack's own store.
    location = lam.get_function(FunctionName=name)["Code"]
    assert location["RepositoryType"] == "S3"
    assert requests.get(location["Location"], timeout=10).content == package

    # The object and its bucket go away; the function keeps its code, as on Lambda.
    aws.s3.delete_object(Bucket=bucket, Key="builds/app.zip")
    aws.s3.delete_bucket(Bucket=bucket)
    lam.update_function_configuration(FunctionName=name, MemorySize=256)  # new environments
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == {"says": "from s3"}
    assert requests.get(lam.get_function(FunctionName=name)["Code"]["Location"], timeout=10).content == package


def test_update_from_a_versioned_bucket(lam: Any, aws: Aws, bucket: str) -> None:
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = aws.s3.put_object(Bucket=bucket, Key="app.zip", Body=says("one"))["VersionId"]
    aws.s3.put_object(Bucket=bucket, Key="app.zip", Body=says("two"))
    name = create_from_s3(lam, bucket, "app.zip", S3ObjectVersion=first)["FunctionName"]
    assert invoke_ok(lam, name, {}) == {"says": "one"}

    # Without S3ObjectVersion: the object's current version.
    updated = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="app.zip")
    assert updated["CodeSha256"] == sha(says("two"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == {"says": "two"}

    # With it: that version, even though a newer one exists; and Publish in the same call.
    updated = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="app.zip",
                                       S3ObjectVersion=first, Publish=True)
    assert (updated["CodeSha256"], updated["Version"]) == (sha(says("one")), "1")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == {"says": "one"}
    assert invoke_ok(lam, name, {}, Qualifier="1") == {"says": "one"}

    # DryRun reads and checks the object but changes nothing.
    preview = lam.update_function_code(FunctionName=name, S3Bucket=bucket, S3Key="app.zip", DryRun=True)
    assert preview["CodeSha256"] == sha(says("two"))
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == sha(says("one"))


def test_layer_from_s3(lam: Any, aws: Aws, bucket: str) -> None:
    content = make_zip({"python/greeting.py": "WORD = 'layered'\n"})
    aws.s3.put_object(Bucket=bucket, Key="layers/greeting.zip", Body=content)
    published = lam.publish_layer_version(LayerName=unique("greeting"),
                                          Content={"S3Bucket": bucket, "S3Key": "layers/greeting.zip"})
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (published["Content"]["CodeSha256"], published["Content"]["CodeSize"]) == (sha(content), len(content))
    assert requests.get(published["Content"]["Location"], timeout=10).content == content
    aws.s3.delete_object(Bucket=bucket, Key="layers/greeting.zip")

    source = "from greeting import WORD\n\ndef handler(event, context):\n    return {'says': WORD}\n"
    aws.s3.put_object(Bucket=bucket, Key="fn.zip", Body=python_zip(source))
    name = create_from_s3(lam, bucket, "fn.zip", name=None)["FunctionName"]
    lam.update_function_configuration(FunctionName=name, Layers=[published["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == {"says": "layered"}


GET_OBJECT = "Error occurred while GetObject. S3 Error Code: {}. S3 Error Message: {}"


def test_every_bad_location_is_refused_as_lambda_refuses_it(lam: Any, aws: Aws, bucket: str) -> None:
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    good = aws.s3.put_object(Bucket=bucket, Key="good.zip", Body=says("good"))["VersionId"]
    aws.s3.put_object(Bucket=bucket, Key="not-a-zip.zip", Body=b"just text")
    name = create_from_s3(lam, bucket, "good.zip")["FunctionName"]
    missing_bucket = (
        "InvalidParameterValueException",
        GET_OBJECT.format("NoSuchBucket", "The specified bucket does not exist"), 400)
    missing_key = (
        "InvalidParameterValueException", GET_OBJECT.format("NoSuchKey", "The specified key does not exist."), 400)
    cases: list[tuple[dict[str, Any], tuple[str, str, int] | tuple[str, None, int]]] = [
        ({"S3Bucket": unique("nobucket"), "S3Key": "good.zip"}, missing_bucket),
        ({"S3Bucket": bucket, "S3Key": "nothing-here.zip"}, missing_key),
        ({"S3Bucket": bucket, "S3Key": "not-a-zip.zip"}, (
            "InvalidParameterValueException",
            "Could not unzip uploaded file. Please check your file, then try to upload again.", 400)),
        ({"S3Bucket": bucket, "S3Key": "good.zip", "ZipFile": says("inline")}, (
            "InvalidParameterValueException",
            "Please do not provide other FunctionCode parameters when providing a ZipFile.", 400)),
        ({"S3Bucket": bucket}, ("InvalidParameterValueException", None, 400)),
        ({"S3Key": "good.zip"}, ("InvalidParameterValueException", None, 400)),
    ]
    for code, expected in cases:
        for call, params in (
            (lam.create_function, dict(FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                                       Handler="app.handler", Code=code)),
            (lam.update_function_code, dict(FunctionName=name, **code)),
        ):
            got = refused(call, **params)
            assert (got[0], got[2]) == (expected[0], expected[2]), (code, got)
            if expected[1] is not None:
                assert got[1] == expected[1], (code, got)
            if call == lam.create_function:
                with pytest.raises(lam.exceptions.ResourceNotFoundException):
                    lam.get_function(FunctionName=params["FunctionName"])  # nothing half-written

    # A version the object does not have (S3 answers NoSuchVersion; Lambda repeats it).
    no_version = ("InvalidParameterValueException",
                  GET_OBJECT.format("NoSuchVersion", "The specified version does not exist."), 400)
    other = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for version in (other, "no-such-version"):
        assert refused(lam.update_function_code, FunctionName=name, S3Bucket=bucket, S3Key="good.zip",
                       S3ObjectVersion=version) == no_version
        assert refused(lam.create_function, FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                       Handler="app.handler",
                       Code={"S3Bucket": bucket, "S3Key": "good.zip", "S3ObjectVersion": version}) == no_version

    # The layer operations say the same.
    assert refused(lam.publish_layer_version, LayerName=unique("layer"),
                   Content={"S3Bucket": bucket, "S3Key": "nothing-here.zip"}) == missing_key
    assert refused(lam.publish_layer_version, LayerName=unique("layer"),
                   Content={"S3Bucket": unique("nobucket"), "S3Key": "x.zip"}) == missing_bucket

    # None of it touched the function.
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] == sha(says("good"))
    assert invoke_ok(lam, name, {}) == {"says": "good"}


def test_an_object_over_the_unzipped_limit_is_refused(lam: Any, aws: Aws, bucket: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("big.bin", "w",
                                                                                 force_zip64=True) as f:
        chunk = bytes(1 << 20)
        for _ in range(251):  # 251 MiB of zeros: a few hundred KB zipped
            f.write(chunk)
    aws.s3.put_object(Bucket=bucket, Key="big.zip", Body=buf.getvalue())
    assert refused(lam.create_function, FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                   Handler="app.handler", Code={"S3Bucket": bucket, "S3Key": "big.zip"}) == (
        "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes", 400)


def test_the_aws_cli_updates_code_from_s3(lam: Any, aws: Aws, bucket: str, srv: Server, tmp_path: Path) -> None:
    aws.s3.put_object(Bucket=bucket, Key="v1.zip", Body=says("v1"))
    aws.s3.put_object(Bucket=bucket, Key="v2.zip", Body=says("v2"))
    name = create_from_s3(lam, bucket, "v1.zip")["FunctionName"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    result = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", srv.url, "--output", "json", "lambda", "update-function-code",
         "--function-name", name, "--s3-bucket", bucket, "--s3-key", "v2.zip"],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["CodeSha256"] == sha(says("v2"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert invoke_ok(lam, name, {}) == {"says": "v2"}
    result = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", srv.url, "lambda", "update-function-code",
         "--function-name", name, "--s3-bucket", bucket, "--s3-key", "gone.zip"],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().endswith(
        "An error occurred (InvalidParameterValueException) when calling the UpdateFunctionCode operation: "
        + GET_OBJECT.format("NoSuchKey", "The specified key does not exist."))


def test_an_object_over_the_size_limit_is_refused_before_it_is_read(lam: Any, aws: Aws, bucket: str) -> None:
    # Larger than any package may unzip to: refused by its announced size, as Lambda refuses it.
    aws.s3.put_object(Bucket=bucket, Key="huge.zip", Body=bytes(262_144_001))
    assert refused(lam.create_function, FunctionName=unique(), Runtime=DEFAULT_RUNTIME, Role=ROLE,
                   Handler="app.handler", Code={"S3Bucket": bucket, "S3Key": "huge.zip"}) == (
        "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes", 400)
    aws.s3.delete_object(Bucket=bucket, Key="huge.zip")
