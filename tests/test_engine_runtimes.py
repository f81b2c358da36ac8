"""Runtimes: one python3.X runtime per CPython on the host, and what health reports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from helpers import DEFAULT_RUNTIME, Server, create_function, invoke


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


VERSION = '''
import sys

def handler(event, context):
    return {"version": list(sys.version_info[:2]), "event": event, "remaining": context.get_remaining_time_in_millis()}
'''

SDK = '''
import boto3, botocore

def handler(event, context):
    return [boto3.__version__, boto3.client("lambda").meta.region_name]
'''

# Every python3.X runtime Lambda has had that lambdastack could offer, and a future one.
CANDIDATES = [f"python3.{minor}" for minor in range(9, 15)]
def health(server: Server) -> dict[str, Any]:
    r = requests.get(server.url + "/_lambdastack/health", timeout=5)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def python_runtimes(server: Server) -> list[str]:
    return sorted((r for r in health(server)["runtimes"] if r.startswith("python")),
                  key=lambda r: tuple(int(p) for p in r[len("python"):].split(".")))


def host_has_full_isolation() -> bool:
    cgroups = Path("/sys/fs/cgroup")
    return os.geteuid() == 0 and os.access(cgroups, os.W_OK) and any(
        (cgroups / c).exists() for c in ("memory", "cgroup.controllers"))


def test_health_reports_the_isolation_level(server: Server) -> None:
    isolation = health(server)["isolation"]
    if host_has_full_isolation():
        assert isolation == "namespaces+cgroups+seccomp"
    else:
        assert isolation.split("+")[0] in ("namespaces", "userns", "process")


def test_the_servers_own_python_is_a_runtime(server: Server) -> None:
    assert DEFAULT_RUNTIME in python_runtimes(server)


def test_every_offered_runtime_is_tested_here(server: Server) -> None:
    assert set(python_runtimes(server)) <= set(CANDIDATES)


def offered_or_skip(server: Server, runtime: str) -> None:
    if runtime not in python_runtimes(server):
        pytest.skip(f"{runtime} is not installed on this host")


@pytest.mark.parametrize("runtime", CANDIDATES)
def test_python_runtime_runs_functions(server: Server, lam: Any, runtime: str) -> None:
    offered_or_skip(server, runtime)
    name = create_function(lam, VERSION, runtime=runtime)
    r = invoke(lam, name, {"runtime": runtime, "text": "✓"})
    assert r.function_error is None, r.payload
    assert r.result["version"] == [3, int(runtime.split(".")[1])]
    assert r.result["event"] == {"runtime": runtime, "text": "✓"}
    assert r.result["remaining"] > 0


@pytest.mark.parametrize("runtime", CANDIDATES)
def test_aws_sdk_imports_on_every_python_runtime(server: Server, lam: Any, runtime: str) -> None:
    offered_or_skip(server, runtime)
    # Imported at init, which runs with the CPU unthrottled, as on Lambda.
    name = create_function(lam, SDK, runtime=runtime, Timeout=30)
    r = invoke(lam, name)
    assert r.function_error is None, r.payload
    assert r.result[1] == "us-east-1"


def test_runtime_missing_on_the_host_is_refused(server: Server, lam: Any) -> None:
    offered = python_runtimes(server)
    missing = next((f"python3.{minor}" for minor in range(14, 9, -1) if f"python3.{minor}" not in offered), None)
    if missing is None:
        pytest.skip("this host offers every python3.X runtime Lambda knows")
    with pytest.raises(ClientError) as info:
        create_function(lam, VERSION, runtime=missing)
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert missing in error["Message"]
    for runtime in offered:
        assert runtime in error["Message"], error["Message"]
