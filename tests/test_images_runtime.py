"""Container-image functions at run time, against a real registry and images built here.

Two images run the same conformance function as the zip runtimes (tests/runtimes_functions.py):
one whose root filesystem is only a static C binary speaking the Runtime API, and one that
carries its own Python (the host's, copied with the shared libraries it loads) with
awslambdaric, started by ENTRYPOINT `python3 -m awslambdaric` and CMD `app.handler`.
Then what an image function may and may not do: ImageConfig overrides, ENV, a read-only
root with /tmp the only writable place, and the isolation zip functions get.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conformance_checks as check
import image_builder as ib
import pytest
import runtimes_functions as fn
from helpers import ROLE, invoke, unique

TIMEOUT_S = 2
MEMORY_MB = 256

PROBE = '''
import errno, os, sys

def handler(event, context):
    op = event["op"]
    if op == "identity":
        status = {}
        for line in open("/proc/self/status").read().splitlines():
            key, _, value = line.partition(":")
            status[key] = value.strip()
        return {"uid": os.getuid(), "gid": os.getgid(), "CapEff": status["CapEff"], "CapBnd": status["CapBnd"],
                "NoNewPrivs": status["NoNewPrivs"], "Seccomp": status["Seccomp"]}
    if op == "write":
        out = {}
        for path in event["paths"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                out[path] = "ok"
            except OSError as e:
                out[path] = errno.errorcode.get(e.errno, str(e.errno))
        return out
    if op == "listdir":
        return {path: sorted(os.listdir(path)) if os.path.isdir(path) else None for path in event["paths"]}
    if op == "read":
        return {path: open(path).read() if os.path.exists(path) else None for path in event["paths"]}
    if op == "stat":
        return [os.stat(path).st_ino for path in event["paths"]]
    if op == "devices":
        with open("/dev/urandom", "rb") as f:
            random = f.read(16)
        with open("/dev/null", "wb") as f:
            f.write(b"x")
        return {"random": len(random), "zero": open("/dev/zero", "rb").read(4) == bytes(4)}
    if op == "env":
        return {"cwd": os.getcwd(), "argv": sys.argv[1:], "vars": {n: os.environ.get(n) for n in event["names"]}}
'''

# An entry point of its own: marks the environment, then runs awslambdaric as `python -m` would.
ALT_ENTRY = '''
import os, runpy, sys
os.environ["ENTERED_BY"] = "alt_entry"
sys.argv = ["awslambdaric", *sys.argv[1:]]
runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)
'''


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def static_image(registry: ib.Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    workdir = tmp_path_factory.mktemp("static")
    binary = fn.compile_c(fn.C, workdir, static=True)
    image = ib.Image(workdir / "layout", entrypoint=["/bootstrap"])
    image.add_layer(ib.layer([ib.file("bootstrap", binary, 0o755)]))
    return registry.push(image.write(), "conformance/static", "v1")


@pytest.fixture(scope="module")
def python_base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | bytes]]:
    """The Python layer and awslambdaric's files (for the host's /usr/bin/python3)."""
    if fn.host_python3() is None:
        pytest.skip("no /usr/bin/python3 on this host to build the image's Python from")
    workdir = tmp_path_factory.mktemp("python")
    ric = dict(fn.vendored_awslambdaric(str(workdir / "ric")))
    so = [str(workdir / "ric" / name) for name in ric if str(name).endswith(".so")]
    layer_path = workdir / "python.tar.gz"
    ib.host_python_layer(layer_path, tuple(so))
    return layer_path, ric


def python_image(registry: ib.Registry, base: tuple[Path, dict[str, str | bytes]], workdir: Path, tag: str,
                 extra_layers: list[bytes] = (), **settings: Any) -> str:  # type: ignore[assignment]
    layer_path, ric = base
    app = {"app.py": fn.PYTHON, "probe.py": PROBE, "alt_entry.py": ALT_ENTRY, **ric}
    image = ib.Image(workdir / tag, entrypoint=["python3", "-m", "awslambdaric"], cmd=["app.handler"],
                     working_dir="/var/task", env=["LAMBDA_TASK_ROOT=/var/task", "FROM_IMAGE=image",
                                                    "OVERRIDDEN=by-image"], **settings)
    image.add_layer_file(layer_path)
    image.add_layer(ib.layer([ib.file(f"var/task/{name}", content, 0o644) for name, content in app.items()]))
    for extra in extra_layers:
        image.add_layer(extra)
    return registry.push(image.write(), "conformance/python", tag)


@pytest.fixture(scope="module")
def python_uri(registry: ib.Registry, python_base: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return python_image(registry, python_base, tmp_path_factory.mktemp("pyimage"), "v1")


def deploy(lam: Any, uri: str, **config: Any) -> str:
    name = unique("img")
    lam.create_function(FunctionName=name, Role=ROLE, PackageType="Image", Code={"ImageUri": uri}, **config)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return name


# ------------------------------------------------------------------ the conformance function, as images


KINDS = ["static-c", "python-awslambdaric"]


@pytest.fixture(scope="module", params=KINDS)
def deployed(request: pytest.FixtureRequest, lam: Any) -> Iterator[tuple[fn.Kind, str]]:
    if request.param == "static-c":
        uri = request.getfixturevalue("static_image")
        kind = fn.Kind("static-c", "", "", language_path=True, error="custom")
    else:
        uri = request.getfixturevalue("python_uri")
        kind = fn.Kind("python-awslambdaric", "", "", language_path=True, error="python")
    name = deploy(lam, uri, Timeout=TIMEOUT_S, MemorySize=MEMORY_MB, Environment={"Variables": {"GREETING": "hello"}})
    yield kind, name
    lam.delete_function(FunctionName=name)


def test_result(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.result_round_trips(lam, deployed[1])


def test_context(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    check.context_is_lambdas(lam, deployed[1], TIMEOUT_S, MEMORY_MB, text="hello")  # the C runtime's is ASCII


def test_environment_variables(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    env, _ = check.ok(lam, name, {"op": "env"})
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB), "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "LAMBDA_TASK_ROOT": "/var/task", "TZ": ":UTC", "LANG": "en_US.UTF-8",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}", "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "GREETING": "hello", "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        # An image's entry point is its own business: Lambda sets neither for images.
        "_HANDLER": None, "AWS_EXECUTION_ENV": None,
        "cwd": "/var/task" if kind.error == "python" else "/",
    }
    assert {k: env[k] for k in expected} == expected


def test_error(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    check.error_in_the_runtimes_format(lam, name, kind)


def test_warm_state_and_log_lines(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    kind, name = deployed
    check.warm_state_survives(lam, name)
    check.log_lines(lam, name, kind, MEMORY_MB)


def test_timeout_and_exit(deployed: tuple[fn.Kind, str], lam: Any) -> None:
    _, name = deployed
    check.timeout_replaces_the_environment(lam, name, TIMEOUT_S)
    check.exit_replaces_the_environment(lam, name)


# ------------------------------------------------------------------ what an image function sees


@pytest.fixture(scope="module")
def probe(lam: Any, python_uri: str) -> Iterator[str]:
    name = deploy(lam, python_uri, ImageConfig={"Command": ["probe.handler"]},
                  Environment={"Variables": {"OVERRIDDEN": "by-function"}})
    yield name
    lam.delete_function(FunctionName=name)


def test_same_isolation_as_zip_functions(lam: Any, probe: str) -> None:
    identity, _ = check.ok(lam, probe, {"op": "identity"})
    assert identity["CapEff"] == "0000000000000000" and identity["CapBnd"] == "0000000000000000", identity
    assert identity["NoNewPrivs"] == "1"
    assert identity["Seccomp"] == "2", identity  # a filter is installed
    assert (identity["uid"], identity["gid"]) == (993, 990), identity  # Lambda's user (the server runs as root)


def test_tmp_is_the_only_writable_place(lam: Any, probe: str) -> None:
    paths = ["/tmp/out", "/var/task/out", "/out", "/usr/out", "/usr/bin/out", "/opt/out"]
    written, _ = check.ok(lam, probe, {"op": "write", "paths": paths})
    assert written["/tmp/out"] == "ok"
    assert {path: written[path] for path in paths[1:]} == dict.fromkeys(paths[1:], "EROFS"), written


def test_devices(lam: Any, probe: str) -> None:
    assert check.ok(lam, probe, {"op": "devices"})[0] == {"random": 16, "zero": True}


def test_image_env_under_the_function_and_lambda_variables(lam: Any, probe: str) -> None:
    names = ["FROM_IMAGE", "OVERRIDDEN", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME"]
    env, _ = check.ok(lam, probe, {"op": "env", "names": names})
    assert env["vars"] == {"FROM_IMAGE": "image", "OVERRIDDEN": "by-function", "LAMBDA_TASK_ROOT": "/var/task",
                           "AWS_LAMBDA_FUNCTION_NAME": probe}
    assert env["argv"] == ["probe.handler"]  # ImageConfig.Command replaced the image's CMD
    assert env["cwd"] == "/var/task"


def test_image_config_overrides_entrypoint_and_working_directory(lam: Any, python_uri: str) -> None:
    name = deploy(lam, python_uri, ImageConfig={
        "EntryPoint": ["/usr/bin/python3", "/var/task/alt_entry.py"], "Command": ["probe.handler"],
        "WorkingDirectory": "/tmp"})
    config = lam.get_function_configuration(FunctionName=name)
    assert config["ImageConfigResponse"] == {"ImageConfig": {
        "EntryPoint": ["/usr/bin/python3", "/var/task/alt_entry.py"], "Command": ["probe.handler"],
        "WorkingDirectory": "/tmp"}}
    env, _ = check.ok(lam, name, {"op": "env", "names": ["ENTERED_BY"]})
    assert env == {"cwd": "/tmp", "argv": ["probe.handler"], "vars": {"ENTERED_BY": "alt_entry"}}
    # Back to the image's own settings: the overrides are replaced as a whole.
    lam.update_function_configuration(FunctionName=name, ImageConfig={})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert "ImageConfigResponse" not in lam.get_function_configuration(FunctionName=name)
    assert check.ok(lam, name, {"op": "echo"})[0] == {"op": "echo"}  # app.handler again
    lam.delete_function(FunctionName=name)


def test_bad_entrypoint_is_invalid_entrypoint(lam: Any, python_uri: str) -> None:
    name = deploy(lam, python_uri, ImageConfig={"EntryPoint": ["/no/such/program"]})
    r = invoke(lam, name, {})
    assert r.function_error == "Unhandled"
    assert r.result == {
        "errorMessage": f"RequestId: {r.request_id} Error: fork/exec /no/such/program: no such file or directory",
        "errorType": "Runtime.InvalidEntrypoint",
    }
    lam.delete_function(FunctionName=name)


def test_whiteouts_delete_what_lower_layers_added(
    lam: Any, registry: ib.Registry, python_base: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lower = ib.layer([
        ib.directory("data"), ib.file("data/a", "a"), ib.file("data/b", "b"),
        ib.directory("old"), ib.file("old/x", "x"), ib.directory("old/sub"), ib.file("old/sub/y", "y"),
        ib.file("kept", "kept"), ib.file("gone", "gone"), ib.directory("gonedir"), ib.file("gonedir/z", "z"),
    ])
    upper = ib.layer([
        ib.file("data/.wh.a", ""), ib.file(".wh.gone", ""), ib.file(".wh.gonedir", ""),
        ib.file("old/.wh..wh..opq", ""), ib.file("old/new", "new"), ib.file("kept", "changed"),
    ])
    uri = python_image(registry, python_base, tmp_path_factory.mktemp("whiteouts"), "whiteouts", [lower, upper])
    name = deploy(lam, uri, ImageConfig={"Command": ["probe.handler"]})
    listed, _ = check.ok(lam, name, {"op": "listdir", "paths": ["/data", "/old", "/gonedir"]})
    assert listed == {"/data": ["b"], "/old": ["new"], "/gonedir": None}
    read, _ = check.ok(lam, name, {"op": "read", "paths": ["/kept", "/gone"]})
    assert read == {"/kept": "changed", "/gone": None}
    lam.delete_function(FunctionName=name)
