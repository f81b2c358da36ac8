"""Safe deployments through `/_lambdastack/deployments`: strategies move the alias step by step,
a version that does worse than the old one is rolled back by itself, every deployment is
recorded with how it ended, and its progress can be followed live."""

from __future__ import annotations

import time
from typing import Any

import requests
from deploy_helpers import (
    FLAKY,
    HEALTHY,
    Traffic,
    deployments_url,
    function_with_alias,
    get_deployment,
    progress_stream,
    publish,
    start_deployment,
    wait_finished,
)
from helpers import Server, create_function, make_zip, unique, wait_for


def canary(percent: float, seconds: float) -> dict[str, Any]:
    return {"Type": "Canary", "Percent": percent, "IntervalSeconds": seconds}


def alias_of(lam: Any, name: str, alias: str = "live") -> tuple[str, dict[str, float]]:
    a = lam.get_alias(FunctionName=name, Name=alias)
    return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def test_a_healthy_canary_completes(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    new = publish(lam, name, HEALTHY, "v2")
    with Traffic(server, f"{name}:live") as traffic:
        r = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=new,
                             Strategy=canary(25, 3), Health={"MinInvocations": 5})
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["Status"], created["FromVersion"], created["ToVersion"]) == ("InProgress", "1", new)
        assert created["Strategy"]["Description"] == "canary 25% for 3 seconds"
        # While the canary runs, the alias gives the new version its share, and both serve.
        assert wait_for(lambda: alias_of(lam, name) == ("1", {new: 0.25}), timeout=10)
        assert wait_for(lambda: traffic.versions[new] > 5 and traffic.versions["1"] > 5, timeout=10)
        done = wait_finished(server, created["DeploymentId"])
    assert done["Status"] == "Succeeded", done
    assert done["Weight"] == 1.0
    assert alias_of(lam, name) == (new, {})
    health = done["Progress"]["Health"]
    assert health["Healthy"] and health["Judged"]
    assert health["New"]["Invocations"] >= 5 and health["New"]["Errors"] == 0
    assert health["Old"]["Invocations"] > health["New"]["Invocations"]  # 75% against 25%
    messages = [e["Message"] for e in done["Progress"]["Events"]]
    assert any("25%" in m for m in messages) and any("100%" in m for m in messages)
    assert lam.invoke(FunctionName=f"{name}:live", Payload=b"{}")["ExecutedVersion"] == new


def test_a_canary_that_fails_30_percent_of_calls_is_rolled_back(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    bad = publish(lam, name, FLAKY, "v2")
    with Traffic(server, f"{name}:live") as traffic:
        r = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=bad,
                             Strategy=canary(30, 60))
        assert r.status_code == 201, r.text
        done = wait_finished(server, r.json()["DeploymentId"], timeout=60)
        assert done["Status"] == "RolledBack", done
        rolled_back_at = sum(traffic.versions.values())
        time.sleep(0.5)
    # Long before the canary's minute was over: the health check caught it.
    assert f"error rate of version {bad}" in done["StatusReason"]
    assert "against 0.0% on version 1" in done["StatusReason"]
    assert done["Weight"] == 0.0
    assert alias_of(lam, name) == ("1", {})
    health = done["Progress"]["Health"]
    assert not health["Healthy"] and health["New"]["ErrorRate"] > 0.05 and health["Old"]["Errors"] == 0
    assert traffic.errors[bad] > 0 and traffic.errors["1"] == 0
    # After the rollback the alias sends nothing more to the bad version.
    served_bad = traffic.versions[bad]
    assert sum(traffic.versions.values()) > rolled_back_at
    assert lam.invoke(FunctionName=f"{name}:live", Payload=b"{}")["ExecutedVersion"] == "1"
    assert traffic.versions[bad] == served_bad
    assert any("rolled back" in e["Message"] for e in done["Progress"]["Events"])


SLOW = """
import time

def handler(event, context):
    time.sleep(0.05)
    return {"mark": "slow"}
"""


def test_a_version_much_slower_than_the_old_one_is_rolled_back(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    slow = str(lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": SLOW}),
                                        Publish=True)["Version"])
    with Traffic(server, f"{name}:live"):
        r = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=slow,
                             Strategy=canary(50, 120))
        done = wait_finished(server, r.json()["DeploymentId"], timeout=100)
    assert done["Status"] == "RolledBack", done
    assert done["StatusReason"].startswith(f"p99 duration of version {slow} is ")
    health = done["Progress"]["Health"]
    assert health["New"]["Errors"] == 0 and health["New"]["Invocations"] >= 100
    assert health["New"]["P99Ms"] >= 50 > health["Old"]["P99Ms"] * 2 + 10
    assert alias_of(lam, name) == ("1", {})


def test_linear_steps_and_the_live_progress_stream(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    new = publish(lam, name, HEALTHY, "v2")
    with Traffic(server, f"{name}:live"):
        r = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=new,
                             Strategy={"Type": "Linear", "Percent": 40, "IntervalSeconds": 1})
        assert r.status_code == 201, r.text
        documents = progress_stream(server, r.json()["DeploymentId"])
    weights = [d["Weight"] for d in documents]
    assert weights == sorted(weights)  # traffic only ever moves forward
    assert {0.4, 0.8, 1.0} <= set(weights)
    assert documents[-1]["Status"] == "Succeeded"
    assert all(d["Status"] == "InProgress" for d in documents[:-1])
    assert documents[-1]["Progress"]["Steps"] == 3
    assert alias_of(lam, name) == (new, {})


def test_all_at_once_and_the_record_of_deployments(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    two = publish(lam, name, HEALTHY, "v2")
    three = publish(lam, name, HEALTHY, "v3")
    first = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=two).json()
    assert first["Strategy"] == {"Type": "AllAtOnce", "Description": "all at once"}
    assert wait_finished(server, first["DeploymentId"])["Status"] == "Succeeded"
    second = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=three,
                              Strategy={"Type": "AllAtOnce"}).json()
    assert second["FromVersion"] == two
    assert wait_finished(server, second["DeploymentId"])["Status"] == "Succeeded"
    assert alias_of(lam, name) == (three, {})
    listed = requests.get(deployments_url(server), params={"FunctionName": name}, timeout=10).json()
    assert [d["DeploymentId"] for d in listed["Deployments"]] == [second["DeploymentId"], first["DeploymentId"]]
    assert [d["Status"] for d in listed["Deployments"]] == ["Succeeded", "Succeeded"]
    page = requests.get(deployments_url(server), params={"FunctionName": name, "MaxItems": 1}, timeout=10).json()
    assert [d["DeploymentId"] for d in page["Deployments"]] == [second["DeploymentId"]]
    rest = requests.get(deployments_url(server), params={"FunctionName": name, "Marker": page["NextMarker"]},
                        timeout=10).json()
    assert [d["DeploymentId"] for d in rest["Deployments"]] == [first["DeploymentId"]]
    assert "NextMarker" not in rest
    got = get_deployment(server, first["DeploymentId"])
    assert got["FunctionArn"].endswith(f":function:{name}") and got["AliasArn"].endswith(f":{name}:live")


def error_of(response: requests.Response) -> tuple[int, str, str]:
    return response.status_code, response.headers.get("x-amzn-ErrorType", ""), response.json().get("message", "")


def test_deployments_that_cannot_start(server: Server, plain_lam: Any) -> None:
    lam = plain_lam
    name = function_with_alias(lam)
    new = publish(lam, name, HEALTHY, "v2")
    status, code, _ = error_of(start_deployment(server, FunctionName=unique("nope"), AliasName="live",
                                                TargetVersion="2"))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, message = error_of(start_deployment(server, FunctionName=name, AliasName="nope",
                                                      TargetVersion=new))
    assert (status, code) == (404, "ResourceNotFoundException") and "Cannot find alias arn" in message
    status, code, _ = error_of(start_deployment(server, FunctionName=name, AliasName="live", TargetVersion="9"))
    assert (status, code) == (404, "ResourceNotFoundException")
    status, code, _ = error_of(start_deployment(server, FunctionName=name, AliasName="live",
                                                TargetVersion="$LATEST"))
    assert (status, code) == (400, "InvalidParameterValueException")
    status, code, message = error_of(start_deployment(server, FunctionName=name, AliasName="live",
                                                      TargetVersion="1"))
    assert (status, code) == (400, "InvalidParameterValueException") and "already points" in message
    for strategy in ({"Type": "Sideways"}, canary(0, 5), canary(100, 5), canary(10, 0), {"Type": "Linear"}):
        status, code, _ = error_of(start_deployment(server, FunctionName=name, AliasName="live",
                                                    TargetVersion=new, Strategy=strategy))
        assert (status, code) == (400, "InvalidParameterValueException"), strategy
    status, code, _ = error_of(start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=new,
                                                Health={"MaxP99Ratio": "big"}))
    assert (status, code) == (400, "InvalidParameterValueException")
    bad_json = requests.post(deployments_url(server), data=b"{nope", timeout=10)
    assert (bad_json.status_code, bad_json.headers["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException")
    missing = requests.get(f"{deployments_url(server)}/no-such-id", timeout=10)
    assert (missing.status_code, missing.headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException")
    # One deployment per alias at a time; an alias already split between versions is refused.
    running = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=new,
                               Strategy=canary(10, 30)).json()
    status, code, message = error_of(start_deployment(server, FunctionName=name, AliasName="live",
                                                      TargetVersion=new))
    assert (status, code) == (409, "ResourceConflictException") and "in progress" in message
    other = create_function(lam, files={"app.py": HEALTHY.format(mark="x")})
    lam.publish_version(FunctionName=other)
    publish(lam, other, HEALTHY, "y")
    publish(lam, other, HEALTHY, "z")
    lam.create_alias(FunctionName=other, Name="split", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    status, code, _ = error_of(start_deployment(server, FunctionName=other, AliasName="split", TargetVersion="3"))
    assert (status, code) == (409, "ResourceConflictException")
    # Changing the alias by hand stops the deployment, which then leaves the alias alone.
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion="1", RoutingConfig={})
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=new)
    time.sleep(0.1)
    aborted = wait_finished(server, running["DeploymentId"], timeout=10)
    assert aborted["Status"] == "Aborted", aborted
    assert aborted["StatusReason"] == "alias live was changed outside the deployment; the deployment left it as it is"
    assert alias_of(lam, name) == (new, {})


def test_a_deployment_running_when_the_server_stops_is_rolled_back(private_server: Any, tmp_path: Any) -> None:
    server = private_server()
    lam = server.client()
    name = function_with_alias(lam)
    new = publish(lam, name, HEALTHY, "v2")
    started = start_deployment(server, FunctionName=name, AliasName="live", TargetVersion=new,
                               Strategy=canary(50, 600)).json()
    assert wait_for(lambda: alias_of(lam, name) == ("1", {new: 0.5}), timeout=10)
    server.kill()  # a crash, in the middle of the canary
    again = private_server(data_dir=server.data_dir)
    lam = again.client()
    done = get_deployment(again, started["DeploymentId"])
    assert done["Status"] == "RolledBack", done
    assert "server stopped" in done["StatusReason"]
    assert alias_of(lam, name) == ("1", {})
