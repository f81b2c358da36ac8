"""Versions and aliases end to end: publishing, listing, deleting, routing weights."""

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


def new_function(lam: Any, **extra: Any) -> str:
    name = unique()
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": python_zip(ECHO)},
        **extra,
    )
    return name


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


# -- versions ------------------------------------------------------------------------------


def test_publish_numbers_versions_and_skips_unchanged(lam: Any) -> None:
    name = new_function(lam, Description="base")
    one = lam.publish_version(FunctionName=name, Description="first")
    assert one["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (one["Version"], one["FunctionArn"], one["Description"]) == ("1", arn(name, "1"), "first")
    assert one["State"] == "Active"
    # Nothing changed: the same version comes back.
    again = lam.publish_version(FunctionName=name)
    assert (again["Version"], again["RevisionId"]) == ("1", one["RevisionId"])
    lam.update_function_configuration(FunctionName=name, Timeout=7)
    two = lam.publish_version(FunctionName=name)
    assert (two["Version"], two["Timeout"], two["Description"]) == ("2", 7, "base")
    lam.update_function_code(FunctionName=name, ZipFile=python_zip("# v3\n" + ECHO))
    assert lam.publish_version(FunctionName=name)["Version"] == "3"
    # Versions are immutable snapshots.
    lam.update_function_configuration(FunctionName=name, Timeout=20, Description="later")
    assert lam.get_function_configuration(FunctionName=name, Qualifier="2")["Timeout"] == 7
    assert lam.get_function_configuration(FunctionName=name, Qualifier="1")["Description"] == "first"


def test_publish_preconditions(lam: Any) -> None:
    name = new_function(lam)
    conf = lam.get_function_configuration(FunctionName=name)
    code, message, status = error_of(lam.publish_version, FunctionName=name, CodeSha256="AAAA")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert conf["CodeSha256"] in message
    code, message, status = error_of(lam.publish_version, FunctionName=name, RevisionId="stale")
    assert (code, status) == ("PreconditionFailedException", 412)
    ok = lam.publish_version(FunctionName=name, CodeSha256=conf["CodeSha256"], RevisionId=conf["RevisionId"])
    assert ok["Version"] == "1"
    code, _, status = error_of(lam.publish_version, FunctionName="no-such-fn")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_publish_on_create_and_numbers_not_reused(lam: Any) -> None:
    name = unique()
    r = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": python_zip(ECHO)},
        Publish=True,
    )
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (r["Version"], r["FunctionArn"]) == ("1", arn(name, "1"))
    lam.update_function_configuration(FunctionName=name, MemorySize=256)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    assert lam.delete_function(FunctionName=name, Qualifier="2")["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, _, status = error_of(lam.get_function, FunctionName=name, Qualifier="2")
    assert (code, status) == ("ResourceNotFoundException", 404)
    lam.update_function_configuration(FunctionName=name, MemorySize=512)
    assert lam.publish_version(FunctionName=name)["Version"] == "3"


def test_list_versions_by_function(lam: Any) -> None:
    name = new_function(lam)
    for timeout in (4, 5, 6):
        lam.update_function_configuration(FunctionName=name, Timeout=timeout)
        lam.publish_version(FunctionName=name)
    listed = lam.list_versions_by_function(FunctionName=name)
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "1", "2", "3"]
    assert listed["Versions"][0]["FunctionArn"] == arn(name, "$LATEST")
    assert [v["Timeout"] for v in listed["Versions"]] == [6, 4, 5, 6]
    assert "NextMarker" not in listed
    pages = list(
        lam.get_paginator("list_versions_by_function").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 1}
        )
    )
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2", "3"]
    assert all(len(p["Versions"]) == 1 for p in pages)
    code, _, status = error_of(lam.list_versions_by_function, FunctionName="no-such-fn")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_delete_version_rules(lam: Any) -> None:
    name = new_function(lam)
    lam.publish_version(FunctionName=name)
    code, message, status = error_of(lam.delete_function, FunctionName=name, Qualifier="$LATEST")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "$LATEST" in message
    # A version that is not there is deleted already: AWS answers 204 (the function stays).
    assert lam.delete_function(FunctionName=name, Qualifier="7")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    code, message, status = error_of(lam.delete_function, FunctionName=name, Qualifier="1")
    assert (code, status) == ("ResourceConflictException", 409)
    assert "prod" in message
    lam.delete_alias(FunctionName=name, Name="prod")
    lam.delete_function(FunctionName=f"{name}:1")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST"]


# -- aliases -----------------------------------------------------------------------------


def test_alias_lifecycle(lam: Any) -> None:
    name = new_function(lam)
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Timeout=9)
    lam.publish_version(FunctionName=name)
    created = lam.create_alias(
        FunctionName=name, Name="live", FunctionVersion="1", Description="prod traffic"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == arn(name, "live")
    assert (created["Name"], created["FunctionVersion"], created["Description"]) == (
        "live",
        "1",
        "prod traffic",
    )
    assert "RoutingConfig" not in created
    got = lam.get_alias(FunctionName=name, Name="live")
    assert got["RevisionId"] == created["RevisionId"]

    updated = lam.update_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.25}},
        RevisionId=created["RevisionId"],
    )
    assert updated["FunctionVersion"] == "2"
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}
    assert updated["Description"] == "prod traffic"
    assert updated["RevisionId"] != created["RevisionId"]
    code, message, status = error_of(
        lam.update_alias, FunctionName=name, Name="live", Description="x", RevisionId=created["RevisionId"]
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    assert "GetAlias" in message
    # The function resolves through the alias to the alias's version.
    assert lam.get_function_configuration(FunctionName=f"{name}:live")["Timeout"] == 9

    cleared = lam.update_alias(FunctionName=name, Name="live", RoutingConfig={})
    assert "RoutingConfig" not in cleared
    assert lam.delete_alias(FunctionName=name, Name="live")["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, message, status = error_of(lam.get_alias, FunctionName=name, Name="live")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"Cannot find alias arn: {arn(name, 'live')}"  # AWS's words
    # Deleting it again succeeds, as on AWS (idempotent); a missing function is still not found.
    assert lam.delete_alias(FunctionName=name, Name="live")["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, _, status = error_of(lam.delete_alias, FunctionName=f"{name}-missing", Name="live")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_alias_errors(lam: Any) -> None:
    name = new_function(lam)
    lam.publish_version(FunctionName=name)
    lam.update_function_configuration(FunctionName=name, Timeout=8)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="a", FunctionVersion="$LATEST")
    code, message, status = error_of(lam.create_alias, FunctionName=name, Name="a", FunctionVersion="1")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == f"Alias already exists: {arn(name, 'a')}"
    code, _, status = error_of(lam.create_alias, FunctionName=name, Name="b", FunctionVersion="9")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.create_alias, FunctionName="no-such-fn", Name="b", FunctionVersion="1")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.create_alias, FunctionName=name, Name="123", FunctionVersion="1")
    assert (code, status) == ("ValidationException", 400)

    def routing(primary: str, weights: dict[str, float]) -> tuple[str, str, int]:
        return error_of(
            lam.create_alias,
            FunctionName=name,
            Name=unique("r"),
            FunctionVersion=primary,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )

    assert routing("1", {"2": 0.5, "3": 0.1})[0] == "InvalidParameterValueException"  # at most one entry
    assert routing("$LATEST", {"1": 0.5})[0] == "InvalidParameterValueException"  # published versions only
    assert routing("1", {"1": 0.5})[0] == "InvalidParameterValueException"  # not the primary
    assert routing("1", {"9": 0.5})[:3:2] == ("ResourceNotFoundException", 404)  # must exist
    code, message, status = routing("1", {"2": 1.5})
    assert (code, status) == ("ValidationException", 400)
    assert "Member must have value less than or equal to 1.0" in message
    assert routing("1", {"$LATEST": 0.5})[0] == "ValidationException"
    ok = lam.create_alias(
        FunctionName=name,
        Name="split",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}},
    )
    assert ok["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.0}}
    code, _, status = error_of(lam.delete_function, FunctionName=name, Qualifier="2")
    assert (code, status) == ("ResourceConflictException", 409)


def test_list_aliases(lam: Any) -> None:
    name = new_function(lam)
    lam.publish_version(FunctionName=name)
    for alias in ("c", "a", "b"):
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="1" if alias != "c" else "$LATEST")
    listed = lam.list_aliases(FunctionName=name)
    assert [a["Name"] for a in listed["Aliases"]] == ["a", "b", "c"]
    assert listed["Aliases"][0]["AliasArn"] == arn(name, "a")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]] == [
        "a",
        "b",
    ]
    pages = list(
        lam.get_paginator("list_aliases").paginate(FunctionName=name, PaginationConfig={"PageSize": 1})
    )
    assert [a["Name"] for p in pages for a in p["Aliases"]] == ["a", "b", "c"]
    assert lam.list_aliases(FunctionName=new_function(lam))["Aliases"] == []
