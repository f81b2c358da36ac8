"""The response-shape checker used by the control-plane tests catches what it should."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
import requests
from helpers import Server
from shapecheck import check_response

MODEL = botocore.session.get_session().get_service_model("lambda")


def problems(operation: str, body: Any, status: int = 200, code: str | None = None) -> list[str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return check_response(MODEL.operation_model(operation), status, raw, code)


def test_a_conforming_response_passes() -> None:
    body = {
        "FunctionName": "f",
        "MemorySize": 128,
        "Environment": {"Variables": {"A1": "x"}},
        "Layers": [{"Arn": "arn:aws:lambda:us-east-1:000000000000:layer:l:1", "CodeSize": 0}],
        "State": "Active",
    }
    assert problems("GetFunctionConfiguration", body) == []
    assert problems("GetAlias", {"RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}}) == []
    assert problems("DeleteAlias", b"", status=204) == []


@pytest.mark.parametrize(
    ("operation", "body", "complaint"),
    [
        ("GetFunctionConfiguration", {"Bogus": 1}, "GetFunctionConfiguration.Bogus: not a member"),
        ("GetFunctionConfiguration", {"MemorySize": "128"}, "expected an integer"),
        ("GetFunctionConfiguration", {"MemorySize": True}, "expected an integer"),
        ("GetFunctionConfiguration", {"State": "Sleeping"}, "is not in the enum of State"),
        ("GetFunctionConfiguration", {"Layers": {"Arn": "x"}}, "expected a list"),
        ("GetFunctionConfiguration", {"Environment": {"Variables": {"A1": 1}}}, "expected a string"),
        ("GetFunction", {"Configuration": {"Nested": {}}}, "GetFunction.Configuration.Nested: not a member"),
        ("GetAlias", {"RoutingConfig": {"AdditionalVersionWeights": {"1": "half"}}}, "expected a number"),
        ("ListFunctions", {"Functions": [{"Timeout": 3.5}]}, "expected an integer"),
        ("DeleteAlias", {"unexpected": "body"}, "the model has no output"),
    ],
)
def test_a_wrong_response_is_caught(operation: str, body: Any, complaint: str) -> None:
    found = problems(operation, body)
    assert any(complaint in p for p in found), found


def test_error_bodies_are_checked_against_the_error_shape() -> None:
    good = {"Type": "User", "Message": "Function not found: x"}
    assert problems("GetFunction", good, 404, "ResourceNotFoundException") == []
    found = problems(
        "GetFunction", {"Type": "User", "Message": "x", "Extra": 1}, 404, "ResourceNotFoundException"
    )
    assert found == ["GetFunction!ResourceNotFoundException.Extra: not a member of ResourceNotFoundException"]


def test_malformed_request_bodies(server: Server) -> None:
    url = f"{server.url}/2015-03-31/functions"
    for body in (b"{not json", b"[1, 2]", b'{"FunctionName": 5, "Role": "r", "Code": {}}'):
        r = requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 400
        assert r.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-amzn-RequestId"]
        assert (
            check_response(
                MODEL.operation_model("CreateFunction"), 400, r.content, "InvalidRequestContentException"
            )
            == []
        )
