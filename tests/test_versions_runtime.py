"""Versions and aliases at run time: a published version runs exactly what was published,
whatever happens to $LATEST later; a weighted alias splits invocations by its weights."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, create_function, invoke, make_zip, unique

WHAT_RUNS = '''
import os
MARK = "{mark}"

def handler(event, context):
    try:
        with open("/opt/layer.txt") as f:
            layer = f.read()
    except OSError:
        layer = None
    return {{
        "mark": MARK,
        "layer": layer,
        "color": os.environ.get("COLOR"),
        "memory": os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "context_version": context.function_version,
        "arn": context.invoked_function_arn,
        "timeout_ms": context.get_remaining_time_in_millis(),
    }}
'''


def source(mark: str) -> bytes:
    return make_zip({"app.py": WHAT_RUNS.format(mark=mark)})


def layer(lam: Any, text: str) -> dict[str, Any]:
    return dict(lam.publish_layer_version(LayerName=unique("vl"), Content={"ZipFile": make_zip({"layer.txt": text})}))


def updated(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_a_version_runs_exactly_what_was_published(plain_lam: Any) -> None:
    lam = plain_lam
    one, two, three = layer(lam, "layer one"), layer(lam, "layer two"), layer(lam, "layer three")
    name = create_function(lam, files={"app.py": WHAT_RUNS.format(mark="code one")}, MemorySize=256, Timeout=10,
                           Environment={"Variables": {"COLOR": "red"}}, Layers=[one["LayerVersionArn"]])
    assert lam.publish_version(FunctionName=name)["Version"] == "1"
    lam.update_function_code(FunctionName=name, ZipFile=source("code two"))
    updated(lam, name)
    lam.update_function_configuration(FunctionName=name, MemorySize=512, Timeout=20,
                                      Environment={"Variables": {"COLOR": "green"}}, Layers=[two["LayerVersionArn"]])
    updated(lam, name)
    assert lam.publish_version(FunctionName=name)["Version"] == "2"
    # $LATEST moves on; the published versions do not.
    lam.update_function_code(FunctionName=name, ZipFile=source("code three"))
    updated(lam, name)
    lam.update_function_configuration(FunctionName=name, MemorySize=1024, Environment={"Variables": {"COLOR": "blue"}},
                                      Layers=[three["LayerVersionArn"]])
    updated(lam, name)
    # Even the layer version that version 1 was published with is gone now.
    lam.delete_layer_version(LayerName=one["LayerArn"], VersionNumber=one["Version"])

    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    expected = {
        "1": ("code one", "layer one", "red", "256", 10_000),
        "2": ("code two", "layer two", "green", "512", 20_000),
        "$LATEST": ("code three", "layer three", "blue", "1024", 20_000),
    }
    for qualifier, (mark, layer_text, color, memory, timeout_ms) in expected.items():
        for _ in range(2):  # a cold and a warm environment
            r = invoke(lam, f"{name}:{qualifier}", {})
            assert r.function_error is None, r.payload
            assert r.executed_version == qualifier
            got = r.result
            assert (got["mark"], got["layer"], got["color"], got["memory"]) == (mark, layer_text, color, memory)
            assert got["version"] == got["context_version"] == qualifier
            assert got["arn"] == f"{arn}:{qualifier}"
            assert timeout_ms - 2000 < got["timeout_ms"] <= timeout_ms
    unqualified = invoke(lam, name, {})
    assert (unqualified.executed_version, unqualified.result["mark"]) == ("$LATEST", "code three")
    assert invoke(lam, name, {}, Qualifier="1").result["mark"] == "code one"
    # The configuration each version reports is its own snapshot too.
    conf = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert (conf["MemorySize"], conf["Timeout"], conf["Environment"]) == (256, 10, {"Variables": {"COLOR": "red"}})
    assert [entry["Arn"] for entry in conf["Layers"]] == [one["LayerVersionArn"]]


def test_an_alias_follows_its_version(plain_lam: Any) -> None:
    lam = plain_lam
    name = create_function(lam, files={"app.py": WHAT_RUNS.format(mark="first")})
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=source("second"))
    updated(lam, name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    r = invoke(lam, f"{name}:live", {})
    assert (r.executed_version, r.result["mark"], r.result["version"]) == ("1", "first", "1")
    assert r.result["arn"].endswith(f":{name}:live")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    r = invoke(lam, name, {}, Qualifier="live")
    assert (r.executed_version, r.result["mark"]) == ("2", "second")


def count_versions(server: Server, name: str, total: int, threads: int = 8) -> Counter[str]:
    """Invoke `name` `total` times from a few threads; count the versions that ran."""

    def run(n: int) -> Counter[str]:
        client = server.client()
        seen: Counter[str] = Counter()
        for _ in range(n):
            r = client.invoke(FunctionName=name, Payload=b"{}")
            ran = json.loads(r["Payload"].read())["version"]
            assert r["ExecutedVersion"] == ran  # the header says what really ran
            seen[ran] += 1
        return seen

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(run, [total // threads] * threads))
    return sum(parts, Counter())


def test_weighted_alias_splits_invocations_by_weight(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = create_function(lam, files={"app.py": WHAT_RUNS.format(mark="a")})
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=source("b"))
    updated(lam, name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="split", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    seen = count_versions(server, f"{name}:split", 2000)
    assert sum(seen.values()) == 2000 and set(seen) == {"1", "2"}
    assert abs(seen["2"] / 2000 - 0.3) <= 0.05, seen
    # New weights apply to the next invocations.
    lam.update_alias(FunctionName=name, Name="split", RoutingConfig={"AdditionalVersionWeights": {"2": 0.8}})
    seen = count_versions(server, f"{name}:split", 2000)
    assert abs(seen["2"] / 2000 - 0.8) <= 0.05, seen


def test_a_version_an_alias_points_to_cannot_be_deleted(plain_lam: Any) -> None:
    lam = plain_lam
    name = create_function(lam, files={"app.py": WHAT_RUNS.format(mark="a")})
    for mark in ("b", "c"):
        lam.publish_version(FunctionName=name)
        lam.update_function_code(FunctionName=name, ZipFile=source(mark))
        updated(lam, name)
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    for version in ("1", "2"):
        with pytest.raises(ClientError) as info:
            lam.delete_function(FunctionName=name, Qualifier=version)
        e = info.value.response
        assert (e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]) == ("ResourceConflictException", 409)
        assert e["Error"]["Message"] == "Unable to delete version because the following aliases reference it: [prod]"
    # Version 2 still runs through the alias.
    assert invoke(lam, f"{name}:2", {}).result["mark"] == "b"
    lam.delete_function(FunctionName=name, Qualifier="3")  # nobody points to it
    lam.delete_alias(FunctionName=name, Name="prod")
    lam.delete_function(FunctionName=name, Qualifier="2")
    with pytest.raises(ClientError) as info:
        invoke(lam, f"{name}:2", {})
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
