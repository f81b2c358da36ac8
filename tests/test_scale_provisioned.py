"""Provisioned concurrency: environments initialized ahead of the first invocation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import create_function, invoke, wait_for

INIT_TYPE = (
    "import os, time\n"
    "started = time.time()\n"
    "def handler(event, context):\n"
    "    return {'type': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE'], 'started': started}\n"
)


def ready(lam: Any, name: str, qualifier: str) -> dict[str, Any]:
    return wait_for(
        lambda: (c := lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier))["Status"]
        != "IN_PROGRESS" and c,
        timeout=30,
    )


def provision(lam: Any, name: str, qualifier: str, count: int) -> None:
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier, ProvisionedConcurrentExecutions=count
    )


def test_provisioned_environments_are_ready_before_the_first_invocation(plain_lam: Any) -> None:
    name = create_function(plain_lam, INIT_TYPE)
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    put = plain_lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["Status"] in ("IN_PROGRESS", "READY")
    config = ready(plain_lam, name, version)
    assert config["Status"] == "READY"
    assert config["AllocatedProvisionedConcurrentExecutions"] == 2
    assert config["AvailableProvisionedConcurrentExecutions"] == 2
    before = time.time()
    r = invoke(plain_lam, name, Qualifier=version, LogType="Tail")
    assert r.result["type"] == "provisioned-concurrency"
    assert r.result["started"] < before  # its init ran before the invocation arrived
    report = r.log.strip().splitlines()[-1]
    assert report.startswith("REPORT") and "Init Duration" not in report


def test_provisioned_concurrency_through_an_alias(plain_lam: Any) -> None:
    name = create_function(plain_lam, INIT_TYPE)
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    plain_lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    plain_lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    assert ready(plain_lam, name, "live")["Status"] == "READY"
    assert invoke(plain_lam, name, Qualifier="live").result["type"] == "provisioned-concurrency"
    listed = plain_lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in listed] == ["live"]
    # The version the alias points to cannot be provisioned again on its own.
    with pytest.raises(ClientError) as e:
        plain_lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"


def test_spill_over_runs_on_demand(plain_lam: Any) -> None:
    """Beyond the provisioned environments, invocations get on-demand ones."""
    import concurrent.futures

    source = INIT_TYPE.replace("def handler(event, context):\n", "def handler(event, context):\n    time.sleep(1)\n")
    name = create_function(plain_lam, source, Timeout=10)
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    provision(plain_lam, name, version, 1)
    ready(plain_lam, name, version)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(invoke, plain_lam, name, Qualifier=version)
        time.sleep(0.3)  # the provisioned environment is busy with the first one now
        second = pool.submit(invoke, plain_lam, name, Qualifier=version)
        types = sorted(f.result().result["type"] for f in (first, second))
    assert types == ["on-demand", "provisioned-concurrency"]


def test_provisioning_errors(plain_lam: Any) -> None:
    name = create_function(plain_lam, INIT_TYPE)
    with pytest.raises(ClientError) as e:
        plain_lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "unpublished function versions" in e.value.response["Error"]["Message"]
    plain_lam.publish_version(FunctionName=name)
    with pytest.raises(ClientError) as e:
        plain_lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert e.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        provision(plain_lam, name, "7", 1)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_failing_init_fails_provisioning(plain_lam: Any) -> None:
    name = create_function(plain_lam, "raise RuntimeError('no')\n")
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    provision(plain_lam, name, version, 1)
    config = ready(plain_lam, name, version)
    assert config["Status"] == "FAILED"
    assert "FUNCTION_ERROR_INIT_FAILURE" in config["StatusReason"]


def test_deleting_the_configuration_releases_the_environments(plain_lam: Any) -> None:
    name = create_function(plain_lam, INIT_TYPE)
    version = plain_lam.publish_version(FunctionName=name)["Version"]
    provision(plain_lam, name, version, 1)
    ready(plain_lam, name, version)
    plain_lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    with pytest.raises(ClientError):
        plain_lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert invoke(plain_lam, name, Qualifier=version).result["type"] == "on-demand"
