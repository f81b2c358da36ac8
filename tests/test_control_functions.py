"""Functions end to end through boto3: create, read, list, update, delete, names, regions, limits."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import ECHO, ROLE, Server, make_zip, python_zip, unique
from shapecheck import checked


@pytest.fixture
def lam(lam: Any) -> Iterator[Any]:
    """The shared client; every response it gets must match botocore's output shapes."""
    with checked(lam):
        yield lam


@pytest.fixture(scope="module")
def raw_lam(server: Server) -> Any:
    """A client that sends what it is given: botocore's own checks (min, required) are off."""
    return server.client(parameter_validation=False)


def sha_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(lam: Any, name: str | None = None, code: bytes | None = None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FunctionName": name or unique(),
        "Runtime": "python3.12",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": code or python_zip(ECHO)},
    }
    params.update(extra)
    return lam.create_function(**params)


def error_of(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    e = info.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


# -- create ------------------------------------------------------------------------------


def test_create_returns_201_with_lambda_defaults(lam: Any) -> None:
    code = python_zip(ECHO)
    name = unique()
    r = create(lam, name, code)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert r["FunctionName"] == name
    assert r["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert r["CodeSha256"] == sha_b64(code)
    assert r["CodeSize"] == len(code)
    assert r["Version"] == "$LATEST"
    assert (r["Timeout"], r["MemorySize"], r["EphemeralStorage"]) == (3, 128, {"Size": 512})
    assert r["Architectures"] == ["x86_64"]
    assert r["PackageType"] == "Zip"
    assert r["TracingConfig"] == {"Mode": "PassThrough"}
    assert r["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    assert r["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert r["Description"] == ""
    assert r["State"] == "Pending" and "LastUpdateStatus" not in r  # as AWS answers a create
    assert r["StateReasonCode"] == "Creating"
    assert len(r["RevisionId"]) == 36
    assert r["LastModified"].endswith("+0000") and len(r["LastModified"]) == 28
    assert "Environment" not in r and "Layers" not in r


def test_create_settles_to_active_and_waiters_work(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    lam.get_waiter("function_exists").wait(FunctionName=name)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    lam.get_waiter("function_active").wait(FunctionName=name)
    conf = lam.get_function_configuration(FunctionName=name)
    assert (conf["State"], conf["LastUpdateStatus"]) == ("Active", "Successful")
    assert "StateReason" not in conf
    lam.update_function_configuration(FunctionName=name, Timeout=10)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.get_waiter("function_updated").wait(FunctionName=name)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version)


def test_create_with_every_stored_member(lam: Any) -> None:
    published = lam.publish_layer_version(LayerName=unique("deps"), Content={"ZipFile": make_zip({"a": "b"})})
    layer, layer_size = published["LayerVersionArn"], published["Content"]["CodeSize"]
    r = create(
        lam,
        Description="does things",
        Timeout=900,
        MemorySize=10240,
        Environment={"Variables": {"GREETING": "hi", "LEVEL": "2"}},
        EphemeralStorage={"Size": 10240},
        Layers=[layer],
        Architectures=["arm64"],
        TracingConfig={"Mode": "Active"},
        LoggingConfig={"LogFormat": "JSON"},
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"},
        Tags={"team": "core"},
    )
    name = r["FunctionName"]
    conf = lam.get_function_configuration(FunctionName=name)
    for c in (r, conf):
        assert c["Description"] == "does things"
        assert (c["Timeout"], c["MemorySize"], c["EphemeralStorage"]["Size"]) == (900, 10240, 10240)
        assert c["Environment"] == {"Variables": {"GREETING": "hi", "LEVEL": "2"}}
        assert c["Layers"] == [{"Arn": layer, "CodeSize": layer_size}]
        assert c["Architectures"] == ["arm64"]
        assert c["TracingConfig"] == {"Mode": "Active"}
        assert c["LoggingConfig"] == {
            "LogFormat": "JSON",
            "LogGroup": f"/aws/lambda/{name}",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "INFO",
        }
        assert c["DeadLetterConfig"] == {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "core"}


def test_create_existing_name_is_409(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    code, message, status = error_of(create, lam, name)
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == f"Function already exist: {name}"


def test_create_refuses_code_sources_this_server_lacks(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.create_function(
            FunctionName=unique(), Runtime="python3.12", Role=ROLE, Handler="a.b",
            Code={"S3Bucket": "bucket", "S3Key": "key.zip"},
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The shared server has no --aws-endpoint-url: it says so (code from S3: tests/test_s3_code.py).
    assert "--aws-endpoint-url" in info.value.response["Error"]["Message"]
    # An image URI is not code for a Zip function (container images: tests/test_images_functions.py).
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.create_function(
            FunctionName=unique(), Runtime="python3.12", Role=ROLE, Handler="a.b",
            Code={"ImageUri": "127.0.0.1:5000/repo/image:latest"},
        )
    assert info.value.response["Error"]["Message"].startswith("Please provide a source for function code.")


def test_create_requires_runtime_and_handler_for_zip(lam: Any) -> None:
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as info:
        lam.create_function(
            FunctionName=unique(), Role=ROLE, Handler="a.b", Code={"ZipFile": python_zip(ECHO)}
        )
    assert "Runtime and Handler are mandatory" in info.value.response["Error"]["Message"]


def test_deprecated_runtimes_are_refused(lam: Any) -> None:
    for runtime in ("python3.7", "python2.7", "nodejs16.x", "go1.x"):
        code, message, status = error_of(create, lam, Runtime=runtime)
        assert (code, status) == ("InvalidParameterValueException", 400)
        assert f"The runtime parameter of {runtime} is no longer supported" in message
    code, message, status = error_of(create, lam, Runtime="cobol85")
    assert (code, status) == ("InvalidParameterValueException", 400)  # AWS checks the runtime itself
    assert message.startswith("Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum")
    assert message.endswith("] or be a valid ARN") and "python3.12" in message


@pytest.mark.parametrize(
    ("member", "value", "message"),
    [
        (
            "Timeout",
            901,
            "Value '901' at 'timeout' failed to satisfy constraint: "
            "Member must have value less than or equal to 900",
        ),
        (
            "Timeout",
            0,
            "Value '0' at 'timeout' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            "MemorySize",
            10241,
            "Value '10241' at 'memorySize' failed to satisfy constraint: "
            "Member must have value less than or equal to 10240",
        ),
        (
            "MemorySize",
            64,
            "Value '64' at 'memorySize' failed to satisfy constraint: "
            "Member must have value greater than or equal to 128",
        ),
        (
            "EphemeralStorage",
            {"Size": 10241},
            "Value '10241' at 'ephemeralStorage.size' failed to satisfy "
            "constraint: Member must have value less than or equal to 10240",
        ),
        (
            "Description",
            "x" * 257,
            "at 'description' failed to satisfy constraint: "
            "Member must have length less than or equal to 256",
        ),
    ],
)
def test_limits_are_validation_errors(raw_lam: Any, member: str, value: Any, message: str) -> None:
    with checked(raw_lam):
        code, text, status = error_of(create, raw_lam, **{member: value})
        assert (code, status) == ("ValidationException", 400)
        assert text.startswith("1 validation error detected: ")
        assert message in text
        name = create(raw_lam)["FunctionName"]
        code, text, status = error_of(
            raw_lam.update_function_configuration, FunctionName=name, **{member: value}
        )
        assert (code, status) == ("ValidationException", 400)
        assert message in text


def test_environment_rules(lam: Any) -> None:
    code, message, status = error_of(create, lam, Environment={"Variables": {"AWS_REGION": "x", "OK": "1"}})
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message.endswith("Reserved keys used in this request: AWS_REGION")
    code, message, status = error_of(create, lam, Environment={"Variables": {"BIG": "x" * 4100}})
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "exceeded the 4KB limit" in message
    code, message, status = error_of(create, lam, Environment={"Variables": {"1BAD": "x"}})
    assert (code, status) == ("ValidationException", 400)
    assert "environment.variables" in message
    # Just under the limit is fine.
    create(lam, Environment={"Variables": {"FIT": "x" * 4000}})


def test_layer_and_logging_rules(lam: Any) -> None:
    layers = [f"arn:aws:lambda:us-east-1:000000000000:layer:l{i}:1" for i in range(6)]
    code, message, _ = error_of(create, lam, Layers=layers)
    assert (code, message) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.")
    code, _, _ = error_of(create, lam, Layers=[layers[0], layers[0][:-1] + "2"])
    assert code == "InvalidParameterValueException"
    code, message, _ = error_of(
        create, lam, LoggingConfig={"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}
    )
    assert code == "InvalidParameterValueException" and "JSON" in message


# -- read ----------------------------------------------------------------------------------


def test_get_function_code_location_downloads_the_zip(lam: Any) -> None:
    code = make_zip({"app.py": ECHO, "lib/util.py": "X = 1\n"})
    name = create(lam, code=code)["FunctionName"]
    r = lam.get_function(FunctionName=name)
    assert r["Code"]["RepositoryType"] == "S3"
    assert r["Configuration"]["CodeSha256"] == sha_b64(code)
    assert "Tags" not in r and "Concurrency" not in r
    download = requests.get(r["Code"]["Location"], timeout=10)
    assert download.status_code == 200
    assert download.content == code
    assert download.headers["content-type"] == "application/zip"


def test_code_location_cannot_be_forged(lam: Any, server: Server) -> None:
    name = create(lam)["FunctionName"]
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    sha, expires, mac = location.rsplit("/", 1)[1].split(".")
    later = str(int(expires) + 3600)
    for token in (f"{sha}.{later}.{mac}", f"{'0' * 64}.{expires}.{mac}", "garbage"):
        r = requests.get(f"{server.url}/_lambdastack/code/{token}", timeout=10)
        assert r.status_code == 403


def test_unknown_function_is_404(lam: Any) -> None:
    for call in (lam.get_function, lam.get_function_configuration, lam.delete_function):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
            call(FunctionName="no-such-function")
        response = info.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert response["Error"]["Message"] == (
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:no-such-function"
        )
        assert response["Type"] == "User"


def test_name_and_arn_forms(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    for form in (name, f"000000000000:function:{name}", arn):
        conf = lam.get_function_configuration(FunctionName=form)
        assert (conf["FunctionName"], conf["FunctionArn"], conf["Version"]) == (name, arn, "$LATEST")
        for qualifier, expected in (("$LATEST", "$LATEST"), (version, version), ("live", version)):
            conf = lam.get_function_configuration(FunctionName=f"{form}:{qualifier}")
            assert conf["Version"] == expected
            assert conf["FunctionArn"] == f"{arn}:{qualifier}"
            same = lam.get_function(FunctionName=form, Qualifier=qualifier)["Configuration"]
            assert same["Version"] == expected
            # The same qualifier twice is fine; two different ones are not.
            lam.get_function(FunctionName=f"{form}:{qualifier}", Qualifier=qualifier)
    code, message, status = error_of(lam.get_function, FunctionName=f"{name}:live", Qualifier="$LATEST")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "The derived qualifier from the function name does not match the specified qualifier."
    for missing in (f"{name}:99", f"{name}:nosuchalias"):
        code, message, status = error_of(lam.get_function, FunctionName=missing)
        assert (code, status) == ("ResourceNotFoundException", 404)
        assert message == f"Function not found: {arn}:{missing.rsplit(':', 1)[1]}"


def test_name_limits(lam: Any) -> None:
    code, message, status = error_of(create, lam, "n" * 65)
    assert (code, status) == ("InvalidParameterValueException", 400)  # AWS's code for this one, recorded
    assert "Member must have length less than or equal to 64" in message
    create(lam, unique("n").ljust(64, "n"))
    # Elsewhere a longer name (GetFunction takes up to 170 characters) just names no function.
    code, message, status = error_of(lam.get_function, FunctionName="n" * 100)
    assert (code, status) == ("ResourceNotFoundException", 404) and message.endswith(":function:" + "n" * 100)
    code, _, status = error_of(lam.get_function, FunctionName="bad name!")
    assert (code, status) == ("ValidationException", 400)


def test_arn_of_another_account_or_region_is_not_found(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    for arn in (
        f"arn:aws:lambda:eu-west-1:000000000000:function:{name}",
        f"arn:aws:lambda:us-east-1:111111111111:function:{name}",
        f"111111111111:function:{name}",
    ):
        code, _, status = error_of(lam.get_function, FunctionName=arn)
        assert (code, status) == ("ResourceNotFoundException", 404)


def test_regions_are_isolated(server: Server) -> None:
    east, west = server.client(region="us-east-2"), server.client(region="eu-west-3")
    with checked(east), checked(west):
        name = unique()
        a = create(east, name, python_zip("def handler(e, c):\n    return 'east'\n"))
        b = create(west, name, python_zip("def handler(e, c):\n    return 'west'\n"))
        assert a["FunctionArn"] == f"arn:aws:lambda:us-east-2:000000000000:function:{name}"
        assert b["FunctionArn"] == f"arn:aws:lambda:eu-west-3:000000000000:function:{name}"
        assert a["CodeSha256"] != b["CodeSha256"]
        assert west.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == b["CodeSha256"]
        east.delete_function(FunctionName=name)
        assert west.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
        with pytest.raises(east.exceptions.ResourceNotFoundException):
            east.get_function(FunctionName=name)
        assert name in [f["FunctionName"] for f in west.list_functions()["Functions"]]
        assert name not in [f["FunctionName"] for f in east.list_functions()["Functions"]]


# -- list --------------------------------------------------------------------------------


def test_list_functions_paginates(server: Server) -> None:
    # A region of its own, so that the listing holds exactly this test's functions.
    client = server.client(region="ap-southeast-4")
    with checked(client):
        names = sorted(create(client)["FunctionName"] for _ in range(5))
        pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1}))
        assert [len(p["Functions"]) for p in pages] == [1, 1, 1, 1, 1]
        assert [f["FunctionName"] for p in pages for f in p["Functions"]] == names
        first = client.list_functions(MaxItems=2)
        assert len(first["Functions"]) == 2 and first["NextMarker"]
        rest = client.list_functions(Marker=first["NextMarker"])
        assert [f["FunctionName"] for f in first["Functions"] + rest["Functions"]] == names
        assert "NextMarker" not in rest
        everything = client.list_functions()
        assert "NextMarker" not in everything
        assert all(f["FunctionArn"].endswith(f["FunctionName"]) for f in everything["Functions"])

        client.publish_version(FunctionName=names[0])
        listed = client.list_functions(FunctionVersion="ALL")["Functions"]
        assert [(f["FunctionName"], f["Version"]) for f in listed[:2]] == [
            (names[0], "$LATEST"),
            (names[0], "1"),
        ]
        assert listed[1]["FunctionArn"].endswith(f":{names[0]}:1")
        assert len(listed) == 6
        paged = [
            (f["FunctionName"], f["Version"])
            for p in client.get_paginator("list_functions").paginate(
                FunctionVersion="ALL", PaginationConfig={"PageSize": 1}
            )
            for f in p["Functions"]
        ]
        assert paged == [(f["FunctionName"], f["Version"]) for f in listed]
        code, _, status = error_of(client.list_functions, Marker="not-a-marker")
        assert (code, status) == ("InvalidParameterValueException", 400)


def test_empty_region_lists_nothing(server: Server) -> None:
    client = server.client(region="mx-central-1")
    with checked(client):
        r = client.list_functions()
        assert r["Functions"] == []
        assert "NextMarker" not in r


# -- update ------------------------------------------------------------------------------


def test_update_function_code(lam: Any) -> None:
    created = create(lam)
    name = created["FunctionName"]
    new_code = make_zip({"app.py": "def handler(e, c):\n    return 2\n"})
    r = lam.update_function_code(FunctionName=name, ZipFile=new_code)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["CodeSha256"] == sha_b64(new_code) and r["CodeSize"] == len(new_code)
    assert (r["State"], r["LastUpdateStatus"]) == ("Active", "InProgress")
    assert r["RevisionId"] != created["RevisionId"]
    assert r["Version"] == "$LATEST"
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    assert requests.get(got["Code"]["Location"], timeout=10).content == new_code

    code, message, status = error_of(
        lam.update_function_code, FunctionName=name, ZipFile=new_code, RevisionId=created["RevisionId"]
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    assert message.startswith("The Revision Id provided does not match the latest Revision Id.")

    published = lam.update_function_code(
        FunctionName=name,
        ZipFile=python_zip(ECHO),
        Publish=True,
        RevisionId=got["Configuration"]["RevisionId"],
    )
    assert published["Version"] == "1"
    assert published["FunctionArn"].endswith(f":{name}:1")
    assert published["CodeSha256"] == created["CodeSha256"]


def test_update_function_code_dry_run_changes_nothing(lam: Any) -> None:
    created = create(lam)
    name = created["FunctionName"]
    new_code = python_zip("def handler(e, c):\n    return 'dry'\n")
    r = lam.update_function_code(FunctionName=name, ZipFile=new_code, DryRun=True)
    assert r["CodeSha256"] == sha_b64(new_code)
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["CodeSha256"] == created["CodeSha256"]
    assert conf["RevisionId"] == created["RevisionId"]
    code, _, _ = error_of(lam.update_function_code, FunctionName=name, ZipFile=b"nope", DryRun=True)
    assert code == "InvalidParameterValueException"


def test_update_function_configuration(lam: Any) -> None:
    created = create(
        lam,
        Environment={"Variables": {"AA": "1"}},
        Layers=[lam.publish_layer_version(LayerName=unique("x"), Content={"ZipFile": make_zip({"a": "b"})})[
            "LayerVersionArn"]],
    )
    name = created["FunctionName"]
    r = lam.update_function_configuration(
        FunctionName=name,
        Handler="other.main",
        Runtime="python3.13",
        MemorySize=512,
        Timeout=30,
        Environment={"Variables": {"BB": "2"}},
        Description="updated",
        EphemeralStorage={"Size": 1024},
        Layers=[],
        RevisionId=created["RevisionId"],
    )
    assert (r["State"], r["LastUpdateStatus"]) == ("Active", "InProgress")
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["LastUpdateStatus"] == "Successful"
    assert (conf["Handler"], conf["Runtime"], conf["MemorySize"], conf["Timeout"]) == (
        "other.main",
        "python3.13",
        512,
        30,
    )
    assert conf["Environment"] == {"Variables": {"BB": "2"}}
    assert conf["Description"] == "updated"
    assert conf["EphemeralStorage"] == {"Size": 1024}
    assert "Layers" not in conf
    assert conf["CodeSha256"] == created["CodeSha256"]
    assert conf["RevisionId"] == r["RevisionId"] != created["RevisionId"]
    assert conf["LastModified"] >= created["LastModified"]

    code, _, status = error_of(
        lam.update_function_configuration, FunctionName=name, Timeout=5, RevisionId=created["RevisionId"]
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    code, _, status = error_of(lam.update_function_configuration, FunctionName=name, Runtime="python3.6")
    assert (code, status) == ("InvalidParameterValueException", 400)
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {}})
    assert lam.get_function_configuration(FunctionName=name)["Environment"] == {"Variables": {}}  # as AWS echoes it
    code, _, status = error_of(lam.update_function_configuration, FunctionName="missing-fn", Timeout=5)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_revision_id_changes_on_every_change(lam: Any) -> None:
    created = create(lam)
    name = created["FunctionName"]
    seen = {created["RevisionId"]}
    for timeout in (4, 5, 6):
        seen.add(lam.update_function_configuration(FunctionName=name, Timeout=timeout)["RevisionId"])
    seen.add(lam.update_function_code(FunctionName=name, ZipFile=python_zip("x = 1\n" + ECHO))["RevisionId"])
    assert len(seen) == 5
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] in seen


# -- delete ------------------------------------------------------------------------------


def test_delete_function(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    r = lam.delete_function(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    for qualifier in ("$LATEST", "1", "live"):
        code, _, status = error_of(lam.get_function, FunctionName=name, Qualifier=qualifier)
        assert (code, status) == ("ResourceNotFoundException", 404)
    # A new function of the same name starts over.
    create(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    assert lam.list_aliases(FunctionName=name)["Aliases"] == []


def test_delete_function_by_arn(lam: Any) -> None:
    name = create(lam)["FunctionName"]
    lam.delete_function(FunctionName=f"arn:aws:lambda:us-east-1:000000000000:function:{name}")
    code, _, _ = error_of(lam.get_function, FunctionName=name)
    assert code == "ResourceNotFoundException"
