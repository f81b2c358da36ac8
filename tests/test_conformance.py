"""The control plane answers as AWS answers: each case in conformance/*.json is a request and the
answer AWS gave (status, error code, message; for a success, the members of the response and
its stable values), with where it was recorded. Account, region and
names are the only things normalized. Cases run in their file's order on one server, against
one function with versions 1 and 2 and an alias, and one layer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function, make_zip, unique

CASES = json.loads((Path(__file__).parent / "conformance" / "lambda_cases.json").read_text())["cases"]
ALIAS = "eventinvokealias"
# One violation of a model constraint in a ValidationException's message, as the recordings list them.
CONSTRAINT_VIOLATION = re.compile(r"(Value '.*?' at '.*?' failed to satisfy constraint: .+?(?=;|$))")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    server = Server(tmp_path_factory.mktemp("conformance") / "data").start()
    try:
        # As the recordings' clients: no client-side checks, so the server's own answers show.
        lam = client_for(server.url, parameter_validation=False)
        name = create_function(server.client(), name=unique("conf"))
        lam.publish_version(FunctionName=name)
        lam.update_function_configuration(FunctionName=name, Description="second")
        lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
        lam.publish_version(FunctionName=name)
        lam.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion="1")
        arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"].rsplit(":", 1)[0] + ":"
        layer = lam.publish_layer_version(LayerName=unique("conf-layer"), Content={"ZipFile": make_zip({"a": "b"})})
        region, account = arn.split(":")[3:5]
        code_sha = lam.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        yield lam, {"arn": arn, "fn": name, "alias": ALIAS, "layer": layer["LayerArn"].rsplit(":", 1)[1],
                    "layer_arn": layer["LayerArn"], "account": account, "region": region,
                    "code_sha": code_sha}
    finally:
        server.stop()


def _fill(value: Any, names: dict[str, str]) -> Any:
    if value == "{zip}":
        return make_zip({"index.py": "def handler(event, context):\n    return event\n"})
    if value == "{notzip}":
        return b"this is not a zipfile, just a random string"
    if isinstance(value, str) and value.startswith("{hex:"):
        return bytes.fromhex(value[5:-1])
    if isinstance(value, str):
        return re.sub(r"\{([a-z_]+)\}", lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def _at(value: Any, path: str) -> list[Any]:
    """The values at a dotted path ("" the whole body, "*" every item of a list)."""
    found = [value]
    for part in filter(None, path.split(".")):
        if part == "*":
            found = [item for v in found for item in v]
        else:
            found = [v[part] for v in found if isinstance(v, dict) and part in v]
    return found


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_answers_as_aws(case: dict[str, Any], setup: tuple[Any, dict[str, str]]) -> None:
    lam, names = setup
    expect = _fill(case["expect"], names)
    try:
        response = getattr(lam, case["operation"])(**_fill(case["params"], names))
        got = {"status": response["ResponseMetadata"]["HTTPStatusCode"]}
        body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        for name, path in case.get("save", {}).items():  # a value later cases name, e.g. {csc_arn}
            names[name] = _at(body, path)[0]
        if "keys" in expect:  # the members present, all of them, at each path
            got["keys"] = {path: sorted(set().union(*(set(o) for o in _at(body, path)))) for path in expect["keys"]}
        if "values" in expect:  # stable values ("*": one per list item)
            got["values"] = {path: _at(body, path) if "*" in path else (_at(body, path) or [None])[0]
                             for path in expect["values"]}
    except ClientError as e:
        message = e.response["Error"]["Message"]
        got = {"status": e.response["ResponseMetadata"]["HTTPStatusCode"], "code": e.response["Error"]["Code"],
               "message": message, "errors": sorted(CONSTRAINT_VIOLATION.findall(message))}
        if "message_starts" in expect:
            got["message_starts"] = message[:len(expect["message_starts"])]
    assert {k: got.get(k) for k in expect} == expect, case["source"]
