"""Tags, reserved concurrency and account settings end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import ECHO, ROLE, python_zip, unique
from shapecheck import checked


@pytest.fixture
def lam(lam: Any) -> Iterator[Any]:
    with checked(lam):
        yield lam


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    e = info.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


def new_function(lam: Any, **extra: Any) -> dict[str, Any]:
    return lam.create_function(
        FunctionName=unique(),
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": python_zip(ECHO)},
        **extra,
    )


# -- tags --------------------------------------------------------------------------------


def test_tags(lam: Any) -> None:
    fn = new_function(lam, Tags={"team": "core"})
    arn, name = fn["FunctionArn"], fn["FunctionName"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}
    r = lam.tag_resource(Resource=arn, Tags={"env": "prod", "team": "edge"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "edge", "env": "prod"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"team": "edge", "env": "prod"}
    r = lam.untag_resource(Resource=arn, TagKeys=["team", "absent"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "prod"}
    lam.untag_resource(Resource=arn, TagKeys=["env"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lam.get_function(FunctionName=name)
    # Tagging is not a change of the function's code or configuration.
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == fn["RevisionId"]


def test_tag_errors(lam: Any) -> None:
    fn = new_function(lam)
    arn = fn["FunctionArn"]
    missing = arn.rsplit(":", 1)[0] + ":no-such-function"
    for call in (
        lambda: lam.list_tags(Resource=missing),
        lambda: lam.tag_resource(Resource=missing, Tags={"a": "b"}),
        lambda: lam.untag_resource(Resource=missing, TagKeys=["a"]),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException) as info:
            call()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    code, _, status = error_of(lam.list_tags, Resource=arn.replace("us-east-1", "eu-west-1"))
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.tag_resource, Resource=arn, Tags={"aws:reserved": "x"})
    assert (code, status) == ("InvalidParameterValueException", 400)
    code, _, status = error_of(lam.tag_resource, Resource=arn, Tags={f"k{i}": "v" for i in range(51)})
    assert (code, status) == ("InvalidParameterValueException", 400)
    code, _, status = error_of(lam.list_tags, Resource=fn["FunctionName"])
    assert (code, status) == ("ValidationException", 400)


# -- concurrency -------------------------------------------------------------------------


def test_function_concurrency(lam: Any) -> None:
    name = new_function(lam)["FunctionName"]
    empty = lam.get_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in empty
    put = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["ReservedConcurrentExecutions"] == 7
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 7
    assert lam.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 7}
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    r = lam.delete_function_concurrency(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    code, _, status = error_of(
        lam.put_function_concurrency, FunctionName="no-such-fn", ReservedConcurrentExecutions=1
    )
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_unreserved_floor(lam: Any) -> None:
    a, b = new_function(lam)["FunctionName"], new_function(lam)["FunctionName"]
    limits = lam.get_account_settings()["AccountLimit"]
    assert limits["ConcurrentExecutions"] == 1000
    free = limits["UnreservedConcurrentExecutions"]
    allowed = free - 100
    assert allowed > 10
    code, message, status = error_of(
        lam.put_function_concurrency, FunctionName=a, ReservedConcurrentExecutions=allowed + 1
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "Specified ReservedConcurrentExecutions for function decreases account's "
        "UnreservedConcurrentExecution below its minimum value of [100]."
    )
    lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=allowed - 10)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 110
    code, _, _ = error_of(lam.put_function_concurrency, FunctionName=b, ReservedConcurrentExecutions=11)
    assert code == "InvalidParameterValueException"
    lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=10)
    # A function may change its own reservation within what it already holds.
    lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=allowed - 10)
    lam.delete_function_concurrency(FunctionName=a)
    lam.delete_function(FunctionName=b)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == free


def test_account_settings(server: Any) -> None:
    client = server.client(region="ca-west-1")
    with checked(client):
        before = client.get_account_settings()
        assert before["AccountLimit"] == {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": 1000,
            "UnreservedConcurrentExecutions": 1000,
        }
        assert before["AccountUsage"] == {"TotalCodeSize": 0, "FunctionCount": 0}
        fn = new_function(client)
        client.publish_version(FunctionName=fn["FunctionName"])
        after = client.get_account_settings()["AccountUsage"]
        # Each version counts towards code storage, as on Lambda.
        assert after == {"TotalCodeSize": 2 * fn["CodeSize"], "FunctionCount": 1}


def test_account_concurrency_is_configurable(private_server: Any) -> None:
    srv = private_server("--account-concurrency", "150")
    client = srv.client()
    with checked(client):
        limits = client.get_account_settings()["AccountLimit"]
        assert (limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]) == (150, 150)
        name = new_function(client)["FunctionName"]
        code, _, status = error_of(
            client.put_function_concurrency, FunctionName=name, ReservedConcurrentExecutions=51
        )
        assert (code, status) == ("InvalidParameterValueException", 400)
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=50)
        assert client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
