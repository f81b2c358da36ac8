"""Errors as a Lambda caller sees them: exceptions in handlers, init failures, runtime exits,
timeouts, and the service errors of Invoke."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import create_function, invoke, invoke_ok, python_zip


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


COUNTER = '''
import os, sys, time
count = 0

def handler(event, context):
    global count
    count += 1
    if event.get("raise"):
        raise ValueError("boom: " + event["raise"])
    if "exit" in event:
        sys.exit(event["exit"])
    if "_exit" in event:
        os._exit(event["_exit"])
    if "kill" in event:
        os.kill(os.getpid(), 9)
    if "sleep" in event:
        time.sleep(event["sleep"])
    return count
'''


def service_error(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    e = info.value.response
    return e["Error"]["Code"], e["Error"]["Message"], e["ResponseMetadata"]["HTTPStatusCode"]


# -- exceptions raised by handlers --------------------------------------------------------------


def test_exception_in_handler(lam: Any) -> None:
    name = create_function(lam, COUNTER)
    r = invoke(lam, name, {"raise": "bad input"}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    body = r.result
    assert body["errorMessage"] == "boom: bad input"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == r.request_id
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    last = body["stackTrace"][-1]
    assert last.startswith('  File "/var/task/app.py", line 9, in handler\n')
    assert 'raise ValueError("boom: " + event["raise"])' in last
    assert not any("lambdastack" in frame for frame in body["stackTrace"]), "runtime frames are left out"
    assert "[ERROR] ValueError: boom: bad input" in r.log


def test_environment_survives_a_handled_exception(lam: Any) -> None:
    name = create_function(lam, COUNTER)
    assert invoke_ok(lam, name) == 1
    assert invoke(lam, name, {"raise": "x"}).function_error == "Unhandled"
    assert invoke_ok(lam, name) == 3  # same environment: the counter went on


def test_custom_exception_type_and_message(lam: Any) -> None:
    source = (
        "class PaymentDeclined(Exception):\n"
        "    pass\n"
        "def handler(event, context):\n"
        "    raise PaymentDeclined('card 4242 declined')\n"
    )
    body = invoke(lam, create_function(lam, source)).result
    assert (body["errorType"], body["errorMessage"]) == ("PaymentDeclined", "card 4242 declined")


# -- init failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("files, handler, error_type, message", [
    ({"app.py": "import no_such_module_xyz\ndef handler(e, c):\n    return 1\n"}, "app.handler",
     "Runtime.ImportModuleError", "Unable to import module 'app': No module named 'no_such_module_xyz'"),
    ({"app.py": "def handler(e, c):\n    return 1\n"}, "missing.handler",
     "Runtime.ImportModuleError", "Unable to import module 'missing': No module named 'missing'"),
    ({"app.py": "def handler(e, c):\n    return 1\n"}, "app.nope",
     "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
    ({"app.py": "def handler(e, c)\n    return 1\n"}, "app.handler",
     "Runtime.UserCodeSyntaxError", "Syntax error in module 'app': "),
    ({"app.py": "raise RuntimeError('config missing')\n"}, "app.handler",
     "RuntimeError", "config missing"),
], ids=["import-error", "missing-module", "missing-handler", "syntax-error", "exception-at-init"])
def test_init_errors(lam: Any, files: dict[str, str | bytes], handler: str, error_type: str, message: str) -> None:
    name = create_function(lam, files=files, handler=handler)
    for _ in range(2):  # a failed init is not cached: the next invocation tries again and fails alike
        r = invoke(lam, name, LogType="Tail")
        assert (r.status, r.function_error) == (200, "Unhandled")
        body = r.result
        assert body["errorType"] == error_type, body
        assert body["errorMessage"].startswith(message), body
        assert "stackTrace" in body
        assert r.log.startswith(f"START RequestId: {r.request_id}")


def test_init_error_is_fixed_by_new_code(lam: Any) -> None:
    name = create_function(lam, "import no_such_module_xyz\n")
    assert invoke(lam, name).result["errorType"] == "Runtime.ImportModuleError"
    lam.update_function_code(FunctionName=name, ZipFile=python_zip("def handler(e, c):\n    return 'fixed'\n"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert invoke_ok(lam, name) == "fixed"


# -- the runtime exiting ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["_exit", "exit"])
def test_exit_during_an_invocation(lam: Any, how: str) -> None:
    """`os._exit(3)` and `sys.exit(3)` both end the runtime with status 3."""
    name = create_function(lam, COUNTER)
    assert invoke_ok(lam, name) == 1
    r = invoke(lam, name, {how: 3}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result["errorType"] == "Runtime.ExitError"
    assert r.result["errorMessage"] == f"RequestId: {r.request_id} Error: Runtime exited with error: exit status 3"
    assert "Runtime exited with error: exit status 3" in r.log
    assert "lambdastack" not in r.log, "the platform's internals stay out of the function's log"
    # The next invocation gets a fresh environment: module state starts over.
    assert invoke_ok(lam, name) == 1


def test_killed_by_a_signal_during_an_invocation(lam: Any) -> None:
    name = create_function(lam, COUNTER)
    r = invoke(lam, name, {"kill": True})
    assert r.result["errorType"] == "Runtime.ExitError"
    assert r.result["errorMessage"] == f"RequestId: {r.request_id} Error: Runtime exited with error: signal: killed"
    assert invoke_ok(lam, name) == 1


# -- timeouts --------------------------------------------------------------------------------------


def test_timeout_and_the_next_invocation(lam: Any) -> None:
    name = create_function(lam, COUNTER, Timeout=1)
    assert invoke_ok(lam, name) == 1
    r = invoke(lam, name, {"sleep": 30}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result["errorType"] == "Sandbox.Timedout"
    assert r.result["errorMessage"] == f"RequestId: {r.request_id} Error: Task timed out after 1.00 seconds"
    assert f"{r.request_id} Task timed out after 1.00 seconds" in r.log
    assert f"REPORT RequestId: {r.request_id}\t" in r.log
    # The timed-out environment was replaced: a fresh one starts its count again.
    assert invoke_ok(lam, name) == 1
    assert invoke_ok(lam, name) == 2


def test_timeout_kills_background_work_too(lam: Any) -> None:
    source = (
        "import os, subprocess, sys, time\n"
        "def handler(event, context):\n"
        "    if event.get('spawn'):\n"
        "        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "        time.sleep(30)\n"
        "    return sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    )
    name = create_function(lam, source, Timeout=1)
    before = invoke_ok(lam, name)
    assert invoke(lam, name, {"spawn": True}).result["errorType"] == "Sandbox.Timedout"
    after = invoke_ok(lam, name)
    assert len(after) == len(before), (before, after)  # no sleeping child was inherited


# -- service errors of Invoke --------------------------------------------------------------------


def test_missing_function_version_and_alias_are_404(lam: Any) -> None:
    code, message, status = service_error(lam.invoke, FunctionName="no-such-function-here")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message.startswith("Function not found: arn:aws:lambda:us-east-1:")
    assert message.endswith(":function:no-such-function-here:$LATEST")  # Invoke names $LATEST, as AWS does
    name = create_function(lam, COUNTER)
    for qualifier in ("7", "no-such-alias"):
        code, message, status = service_error(lam.invoke, FunctionName=name, Qualifier=qualifier)
        assert (code, status) == ("ResourceNotFoundException", 404), qualifier
        assert message.endswith(f":function:{name}:{qualifier}"), message


def test_invalid_json_payload_is_400(lam: Any) -> None:
    name = create_function(lam, COUNTER)
    for raw in (b"{not json", b"{'single': 'quotes'}", b"\xff\xfe"):
        code, message, status = service_error(lam.invoke, FunctionName=name, Payload=raw)
        assert (code, status) == ("InvalidRequestContentException", 400), raw
        assert "Could not parse request body into json" in message


def test_invalid_client_context_is_400(lam: Any) -> None:
    name = create_function(lam, COUNTER)
    code, _, status = service_error(lam.invoke, FunctionName=name, ClientContext="not base64 json!")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert invoke_ok(lam, name, ClientContext="") == 1

