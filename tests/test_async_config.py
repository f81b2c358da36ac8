"""Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s) through boto3 and the AWS CLI.

Every response goes through `lam`'s check against botocore's output shapes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import REGION, Server, create_function

ACCOUNT = "000000000000"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:failures"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:results"
BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
BUCKET = "arn:aws:s3:::failed-events"


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def arn_of(lam: Any, name: str, qualifier: str = "$LATEST") -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:{qualifier}"


def test_put_get_update_delete(lam: Any) -> None:
    name = create_function(lam)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    put = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                               MaximumEventAgeInSeconds=3600)
    assert put["FunctionArn"] == arn_of(lam, name)
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 3600)
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    assert isinstance(put["LastModified"], dt.datetime) and put["LastModified"] >= before

    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert {k: got[k] for k in ("FunctionArn", "MaximumRetryAttempts", "MaximumEventAgeInSeconds")} == {
        "FunctionArn": arn_of(lam, name), "MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 3600}

    # Update changes only what it is given.
    updated = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": QUEUE}})
    assert updated["MaximumRetryAttempts"] == 1 and updated["MaximumEventAgeInSeconds"] == 3600
    assert updated["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": QUEUE}}
    updated = lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert updated["MaximumRetryAttempts"] == 0
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": QUEUE}

    # Put replaces the whole configuration: what it does not name is gone.
    put = lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={
        "OnSuccess": {"Destination": TOPIC}, "OnFailure": {"Destination": BUCKET}})
    assert "MaximumRetryAttempts" not in put and "MaximumEventAgeInSeconds" not in put
    assert put["DestinationConfig"] == {"OnSuccess": {"Destination": TOPIC}, "OnFailure": {"Destination": BUCKET}}

    lam.delete_function_event_invoke_config(FunctionName=name)
    code, message, status = error_of(lam.get_function_event_invoke_config, FunctionName=name)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert arn_of(lam, name) in message and "EventInvokeConfig" in message


def test_every_destination_kind_is_accepted(lam: Any) -> None:
    name = create_function(lam)
    other = create_function(lam)
    for success, failure in [(QUEUE, TOPIC), (TOPIC, BUS), (BUS, BUCKET), (arn_of(lam, other)[:-8], QUEUE)]:
        out = lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={
            "OnSuccess": {"Destination": success}, "OnFailure": {"Destination": failure}})
        assert out["DestinationConfig"]["OnSuccess"]["Destination"] == success
        assert out["DestinationConfig"]["OnFailure"]["Destination"] == failure


def test_qualifiers(lam: Any) -> None:
    name = create_function(lam)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    by_param = lam.put_function_event_invoke_config(FunctionName=name, Qualifier="live", MaximumRetryAttempts=1)
    assert by_param["FunctionArn"] == arn_of(lam, name, "live")
    by_name = lam.put_function_event_invoke_config(FunctionName=f"{name}:{version}", MaximumRetryAttempts=2)
    assert by_name["FunctionArn"] == arn_of(lam, name, version)
    assert lam.get_function_event_invoke_config(FunctionName=name, Qualifier="live")["MaximumRetryAttempts"] == 1
    assert lam.get_function_event_invoke_config(FunctionName=arn_of(lam, name))["MaximumRetryAttempts"] == 0

    listed = lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert sorted(c["FunctionArn"] for c in listed) == sorted(
        [arn_of(lam, name), arn_of(lam, name, version), arn_of(lam, name, "live")])

    # Pages of one.
    seen, marker = [], None
    while True:
        page = lam.list_function_event_invoke_configs(FunctionName=name, MaxItems=1,
                                                      **({"Marker": marker} if marker else {}))
        seen += [c["FunctionArn"] for c in page["FunctionEventInvokeConfigs"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert sorted(seen) == sorted(c["FunctionArn"] for c in listed)

    code, _, status = error_of(lam.put_function_event_invoke_config, FunctionName=name, Qualifier="nope",
                               MaximumRetryAttempts=1)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.get_function_event_invoke_config, FunctionName=name, Qualifier="99")
    assert (code, status) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("params, code", [
    ({"MaximumRetryAttempts": 3}, "ValidationException"),
    ({"MaximumEventAgeInSeconds": 59}, "ValidationException"),
    ({"MaximumEventAgeInSeconds": 21601}, "ValidationException"),
    ({"DestinationConfig": {"OnSuccess": {"Destination": BUCKET}}}, "InvalidParameterValueException"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:dynamodb:us-east-1:000000000000:table/t"}}},
     "InvalidParameterValueException"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "not an arn"}}}, "ValidationException"),
    ({}, "InvalidParameterValueException"),
])
def test_invalid_settings(server: Server, lam: Any, params: dict[str, Any], code: str) -> None:
    name = create_function(lam)
    unchecked = server.client(parameter_validation=False)  # botocore would refuse values under the minimum
    got, message, status = error_of(unchecked.put_function_event_invoke_config, FunctionName=name, **params)
    assert (got, status) == (code, 400), message
    with pytest.raises(ClientError):
        lam.get_function_event_invoke_config(FunctionName=name)  # nothing was stored


def test_a_function_is_not_its_own_destination(lam: Any) -> None:
    name = create_function(lam)
    code, message, status = error_of(lam.put_function_event_invoke_config, FunctionName=name,
                                     DestinationConfig={"OnFailure": {"Destination": arn_of(lam, name)[:-8]}})
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "destination for itself" in message


def test_missing_things_are_404(lam: Any) -> None:
    name = create_function(lam)
    for call in (lam.get_function_event_invoke_config, lam.delete_function_event_invoke_config):
        code, _, status = error_of(call, FunctionName=name)
        assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status = error_of(lam.update_function_event_invoke_config, FunctionName=name, MaximumRetryAttempts=1)
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, message, status = error_of(lam.put_function_event_invoke_config, FunctionName="no-such-function",
                                     MaximumRetryAttempts=1)
    assert (code, status, message) == ("ResourceNotFoundException", 404, "The function doesn't exist.")  # AWS's words
    code, _, status = error_of(lam.list_function_event_invoke_configs, FunctionName="no-such-function")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert lam.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []


def test_settings_go_with_their_function(lam: Any) -> None:
    name = create_function(lam)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    lam.delete_function(FunctionName=name)
    create_function(lam, name=name)
    code, _, _ = error_of(lam.get_function_event_invoke_config, FunctionName=name)
    assert code == "ResourceNotFoundException"


def test_dead_letter_config_is_stored(lam: Any) -> None:
    name = create_function(lam, DeadLetterConfig={"TargetArn": QUEUE})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": QUEUE}
    lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": TOPIC})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert lam.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": TOPIC}


def test_aws_cli(server: Server, lam: Any) -> None:
    name = create_function(lam)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}
    aws = [os.path.join(os.path.dirname(sys.executable), "aws"), "--endpoint-url", server.url, "lambda"]
    out = subprocess.run([*aws, "put-function-event-invoke-config", "--function-name", name,
                          "--maximum-retry-attempts", "0", "--maximum-event-age-in-seconds", "120",
                          "--destination-config", json.dumps({"OnFailure": {"Destination": QUEUE}})],
                         capture_output=True, text=True, env=env, check=True)
    doc = json.loads(out.stdout)
    assert doc["MaximumRetryAttempts"] == 0 and doc["MaximumEventAgeInSeconds"] == 120
    assert isinstance(doc["LastModified"], float | int | str)
    out = subprocess.run([*aws, "get-function-event-invoke-config", "--function-name", name, "--qualifier", "nope"],
                         capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "ResourceNotFoundException" in out.stderr
