"""One conformance suite, every kind of runtime: the built-in Python runtime, awslambdaric
vendored in a zip under `provided.al2023`, custom `bootstrap` runtimes in shell and in C, and
Node.js (CommonJS and ES modules).

The same function (tests/runtimes_functions.py) is deployed once per kind and driven through
boto3; the expectations (tests/conformance_checks.py, shared with the container-image suite)
are the same for all, except where a runtime's own format differs (error bodies, how a log
line looks, AWS_EXECUTION_ENV, PATH), which `Kind` records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance_checks as check
import pytest
import requests
import runtimes_functions as fn
from helpers import DEFAULT_RUNTIME, ROLE, Server, make_zip, unique

TIMEOUT_S = 2
MEMORY_MB = 256
KINDS = ["python", "awslambdaric", "shell", "c", "nodejs-commonjs", "nodejs-esm"]


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


def node_runtime(server: Server) -> str | None:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    return next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)


def build_kind(name: str, server: Server, workdir: Path) -> fn.Kind:
    if name == "python":
        return fn.Kind(name, DEFAULT_RUNTIME, "app.handler", {"app.py": fn.PYTHON},
                       execution_env=f"AWS_Lambda_{DEFAULT_RUNTIME}")
    if name == "awslambdaric":
        if fn.host_python3() is None:
            pytest.skip("no /usr/bin/python3 on this host for awslambdaric to run on")
        files: dict[str, str | bytes] = dict(fn.vendored_awslambdaric(str(workdir / "ric")))
        files.update({"app.py": fn.PYTHON, "bootstrap": fn.RIC_BOOTSTRAP})
        return fn.Kind(name, "provided.al2023", "app.handler", files, language_path=False)
    if name == "shell":
        return fn.Kind(name, "provided.al2023", "function.handler", {"bootstrap": fn.SHELL},
                       language_path=False, error="custom")
    if name == "c":
        binary = fn.compile_c(fn.C, workdir / "c")
        return fn.Kind(name, "provided.al2", "function.handler", {"bootstrap": binary},
                       language_path=False, error="custom")
    runtime = node_runtime(server)
    if runtime is None:
        pytest.skip("no Node.js on this host")
    files = {"index.js": fn.NODE_COMMONJS} if name == "nodejs-commonjs" else {"index.mjs": fn.NODE_ESM}
    return fn.Kind(name, runtime, "index.handler", files, execution_env=f"AWS_Lambda_{runtime}", error="node",
                   log="node")


@pytest.fixture(scope="module", params=KINDS)
def deployed(
    request: pytest.FixtureRequest, server: Server, lam: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[fn.Kind, str]]:
    kind = build_kind(request.param, server, tmp_path_factory.mktemp(request.param))
    name = unique(kind.name)
    lam.create_function(
        FunctionName=name, Runtime=kind.runtime, Role=ROLE, Handler=kind.handler,
        Code={"ZipFile": make_zip(kind.files)}, Timeout=TIMEOUT_S, MemorySize=MEMORY_MB,
        Environment={"Variables": {"GREETING": "hello"}},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    yield kind, name
    lam.delete_function(FunctionName=name)


def test_result(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.result_round_trips(lam, deployed[1])


def test_context(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.context_is_lambdas(lam, deployed[1], TIMEOUT_S, MEMORY_MB)


def test_invoked_arn_carries_the_alias(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    _, name = deployed
    version = lam.publish_version(FunctionName=name)["Version"]
    alias_arn = lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)["AliasArn"]
    context, _ = check.ok(lam, name, {"op": "context"}, Qualifier="live")
    assert context["invoked_arn"] == alias_arn
    assert context["function_version"] == version
    assert f"[{version}]" in context["log_stream"]


def test_environment_variables(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    env, _ = check.ok(lam, name, {"op": "env"})
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB), "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime", "_HANDLER": kind.handler,
        "TZ": ":UTC", "LANG": "en_US.UTF-8", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "GREETING": "hello", "cwd": "/var/task",
        "AWS_EXECUTION_ENV": kind.execution_env,
    }
    assert {k: env[k] for k in expected} == expected
    if kind.language_path:
        assert env["PATH"] == "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
        assert env["LD_LIBRARY_PATH"].startswith("/var/lang/lib:/lib64:/usr/lib64:")
    else:
        assert env["PATH"] == "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
        assert env["LD_LIBRARY_PATH"] == (
            "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib")
    if kind.log == "node":
        major = kind.runtime[len("nodejs"):-len(".x")]
        assert env["NODE_PATH"] == (f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
                                    "/var/runtime/node_modules:/var/runtime:/var/task")
    else:
        assert env["NODE_PATH"] is None
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])


def test_error(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    check.error_in_the_runtimes_format(lam, name, kind)


def test_warm_state_survives_between_invocations(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.warm_state_survives(lam, deployed[1])


def test_log_lines(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    check.log_lines(lam, name, kind, MEMORY_MB)


def test_timeout(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.timeout_replaces_the_environment(lam, deployed[1], TIMEOUT_S)


def test_runtime_exit(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.exit_replaces_the_environment(lam, deployed[1])
