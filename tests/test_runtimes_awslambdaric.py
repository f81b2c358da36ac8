"""awslambdaric, unmodified from PyPI, vendored in a zip under `provided.al2023` with a bootstrap
running `python3 -m awslambdaric`, behaves exactly like the built-in Python runtime: the same
functions give the same results, error bodies and log lines (request ids and timestamps aside).

The zip carries wheels for the host's /usr/bin/python3 (a `provided` environment sees the
host's /usr); the built-in runtime is the python3.X of that same version when the host offers
it, else the server's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import requests
import runtimes_functions as fn
from helpers import DEFAULT_RUNTIME, ROLE, Server, invoke, make_zip, unique

FUNCTION = '''
import logging, sys
from decimal import Decimal

logger = logging.getLogger()
logger.setLevel(logging.INFO)
logger.info("module loaded")

def helper(value):
    if value == "raise":
        raise ValueError("bad value: %s" % value)
    return value

def handler(event, context):
    print("printed", event.get("op"))
    logger.info("info line")
    logger.warning("warning\\nwith two lines")
    op = event.get("op")
    if op == "raise":
        return helper("raise")
    if op == "custom":
        class Custom(Exception):
            pass
        raise Custom("custom failure")
    if op == "exit":
        sys.exit("bye")
    if op == "unserializable":
        return {"set": {1, 2}}
    if op == "bytes":
        return b"raw bytes"
    if op == "log-exception":
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("caught")
        return "logged"
    return {"event": event, "decimal": Decimal("1.5"), "none": None, "text": "h\\u00e9llo \\u2713",
            "remaining_positive": context.get_remaining_time_in_millis() > 0,
            "memory": context.memory_limit_in_mb, "identity": context.identity.cognito_identity_id}
'''

INIT_FAILURES = {
    "import": ({"app.py": "import not_installed_anywhere\ndef handler(e, c):\n    return 1\n"}, "app.handler"),
    "syntax": ({"app.py": "def handler(e, c):\n    return (\n"}, "app.handler"),
    "missing-handler": ({"app.py": "def other(e, c):\n    return 1\n"}, "app.handler"),
    "missing-module": ({"app.py": "x = 1\n"}, "nowhere.handler"),
    "raises-at-init": ({"app.py": "raise KeyError('config')\n"}, "app.handler"),
}

OPS = ["echo", "raise", "custom", "unserializable", "bytes", "log-exception"]


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def ric_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | bytes]:
    if fn.host_python3() is None:
        pytest.skip("no /usr/bin/python3 on this host for awslambdaric to run on")
    files: dict[str, str | bytes] = dict(fn.vendored_awslambdaric(str(tmp_path_factory.mktemp("ric") / "site")))
    files["bootstrap"] = fn.RIC_BOOTSTRAP
    return files


@pytest.fixture(scope="module")
def builtin_runtime(server: Server) -> str:
    offered = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    same = f"python{fn.host_python3()}"
    return same if same in offered else DEFAULT_RUNTIME


def deploy(lam: Any, runtime: str, files: dict[str, str | bytes], handler: str) -> str:
    name = unique("ric" if runtime.startswith("provided") else "builtin")
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler,
                        Code={"ZipFile": make_zip(files)}, Timeout=10)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


def normalized(text: str, *request_ids: str) -> str:
    for rid in request_ids:
        text = text.replace(rid, "<rid>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<ts>", text)
    # The interpreters' own standard library lives in different places.
    text = re.sub(r'File \\?"[^"]*?/lib/python3\.\d+/', 'File "<stdlib>/', text)
    text = re.sub(r'(File \\?"(<frozen [^>]*>|<stdlib>/[^"\\]*)\\?", line )\d+', r"\1<n>", text)
    return re.sub(r"[\d.]+ ms", "<ms> ms", re.sub(r"\d+ MB", "<n> MB", text))


def function_lines(log: str, request_id: str) -> list[str]:
    """What the function and its runtime wrote during the invocation (START..END, exclusive)."""
    lines = log.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"START RequestId: {request_id}"))
    return [normalized(line, request_id) for line in lines[start + 1:lines.index(f"END RequestId: {request_id}")]]


def test_same_results_errors_and_logs(lam: Any, builtin_runtime: str, ric_files: dict[str, str | bytes]) -> None:
    builtin = deploy(lam, builtin_runtime, {"app.py": FUNCTION}, "app.handler")
    ric = deploy(lam, "provided.al2023", {**ric_files, "app.py": FUNCTION}, "app.handler")
    invoke(lam, builtin, {"op": "warm"})
    invoke(lam, ric, {"op": "warm"})
    for op in OPS:
        a = invoke(lam, builtin, {"op": op}, LogType="Tail")
        b = invoke(lam, ric, {"op": op}, LogType="Tail")
        assert (a.status, a.function_error) == (b.status, b.function_error), op
        assert normalized(a.payload.decode(), a.request_id) == normalized(b.payload.decode(), b.request_id), op
        assert function_lines(a.log, a.request_id) == function_lines(b.log, b.request_id), op
    # Both really ran: the results are what the function returns.
    r = invoke(lam, ric, {"op": "echo"})
    assert r.result["event"] == {"op": "echo"} and r.result["decimal"] == 1.5 and r.result["text"] == "héllo ✓"


def test_same_exit(lam: Any, builtin_runtime: str, ric_files: dict[str, str | bytes]) -> None:
    builtin = deploy(lam, builtin_runtime, {"app.py": FUNCTION}, "app.handler")
    ric = deploy(lam, "provided.al2023", {**ric_files, "app.py": FUNCTION}, "app.handler")
    a, b = invoke(lam, builtin, {"op": "exit"}), invoke(lam, ric, {"op": "exit"})
    assert a.function_error == b.function_error == "Unhandled"
    assert normalized(a.payload.decode(), a.request_id) == normalized(b.payload.decode(), b.request_id)
    assert a.result["errorType"] == "Runtime.ExitError"


@pytest.mark.parametrize("failure", sorted(INIT_FAILURES))
def test_same_init_errors(lam: Any, builtin_runtime: str, ric_files: dict[str, str | bytes], failure: str) -> None:
    files, handler = INIT_FAILURES[failure]
    builtin = deploy(lam, builtin_runtime, dict(files), handler)
    ric = deploy(lam, "provided.al2023", {**ric_files, **files}, handler)
    a = invoke(lam, builtin, {}, LogType="Tail")
    b = invoke(lam, ric, {}, LogType="Tail")
    assert a.function_error == b.function_error == "Unhandled"
    assert normalized(a.payload.decode()) == normalized(b.payload.decode())
    assert a.result["errorType"].startswith("Runtime.") or failure == "raises-at-init"
    assert function_lines(a.log, a.request_id) == function_lines(b.log, b.request_id)


def test_wheels_match_the_interpreter_the_bootstrap_runs(ric_files: dict[str, str | bytes]) -> None:
    version = fn.host_python3()
    assert version is not None
    tag = "cpython-" + version.replace(".", "")
    extensions = [p for p in ric_files if p.endswith(".so")]
    assert extensions and all(tag in Path(p).name for p in extensions), extensions
