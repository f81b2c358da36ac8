"""Custom runtimes (`provided.al2023` / `provided.al2`) and the Runtime API they speak.

The first half drives the environment's init (PID 1, the Runtime API server) directly: this
test is both the worker (protocol frames on a socket pair) and the runtime (HTTP), so that
every header, status code and error path of the API can be seen, including those no Invoke
call can produce (Cognito identity, tenant id). The second half deploys bootstraps through
boto3 and checks what a caller sees when a runtime fails to start, fails its init, exits or
never asks for work.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import runtimes_functions as fn
from helpers import ROLE, invoke, make_zip, unique
from init_process import InitProcess

from lambdastack.runtime import protocol

BASE = "/2018-06-01/runtime"
MAX_RESPONSE = 6_291_556

class InitUnderTest(InitProcess):
    """A real init process; the test speaks to it as its worker and as its runtime."""

    def http(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, BASE + path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def next_in_background(self) -> dict[str, Any]:
        """GET next on a thread; the result fills in once the init answers."""
        result: dict[str, Any] = {}

        def run() -> None:
            result["reply"] = self.http("GET", "/invocation/next")

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        result["thread"] = thread
        return result

    def invoke(self, request_id: str, body: bytes = b"{}", **meta: Any) -> tuple[int, dict[str, str], bytes]:
        pending = self.next_in_background()
        if not getattr(self, "ready", False):
            assert self.frame()[0] == protocol.READY
            self.ready = True
        meta = {"request_id": request_id, "deadline_ms": 1_900_000_000_000,
                "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:f", **meta}
        self.send(protocol.INVOKE, meta, body)
        pending["thread"].join(10)
        reply: tuple[int, dict[str, str], bytes] = pending["reply"]
        return reply


@pytest.fixture
def init() -> Iterator[InitUnderTest]:
    under_test = InitUnderTest()
    yield under_test
    under_test.close()


def test_next_carries_every_invocation_header(init: InitUnderTest) -> None:
    status, headers, body = init.invoke(
        "rid-1", b'{"k": "v"}', deadline_ms=1_900_000_000_123,
        invoked_arn="arn:aws:lambda:us-east-1:000000000000:function:f:live",
        trace_id="Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
        client_context='{"custom":{"a":"b"}}',
        cognito_identity='{"cognitoIdentityId":"id","cognitoIdentityPoolId":"p"}',
        tenant_id="tenant-a",
    )
    assert (status, body) == (200, b'{"k": "v"}')
    assert headers["lambda-runtime-aws-request-id"] == "rid-1"
    assert headers["lambda-runtime-deadline-ms"] == "1900000000123"
    assert headers["lambda-runtime-invoked-function-arn"] == "arn:aws:lambda:us-east-1:000000000000:function:f:live"
    assert headers["lambda-runtime-trace-id"].startswith("Root=1-5bef4de7-")
    assert json.loads(headers["lambda-runtime-client-context"]) == {"custom": {"a": "b"}}
    assert json.loads(headers["lambda-runtime-cognito-identity"])["cognitoIdentityPoolId"] == "p"
    assert headers["lambda-runtime-aws-tenant-id"] == "tenant-a"
    assert headers["content-type"] == "application/json"


def test_optional_headers_are_absent_when_unset(init: InitUnderTest) -> None:
    _, headers, _ = init.invoke("rid-1")
    for name in ("lambda-runtime-client-context", "lambda-runtime-cognito-identity", "lambda-runtime-aws-tenant-id"):
        assert name not in headers


def test_response_status_codes(init: InitUnderTest) -> None:
    init.invoke("rid-1")
    status, _, body = init.http("POST", "/invocation/someone-else/response", b"{}")
    assert status == 403 and json.loads(body)["errorType"] == "InvalidRequestID"
    status, _, body = init.http("POST", "/invocation/rid-1/response", b'{"ok": 1}',
                                {"Content-Type": "application/json"})
    assert (status, json.loads(body)) == (202, {"status": "OK"})
    kind, meta, payload = init.frame()
    assert (kind, meta["request_id"], payload) == (protocol.RESPONSE, "rid-1", b'{"ok": 1}')
    status, _, _ = init.http("POST", "/invocation/rid-1/response", b"{}")
    assert status == 403  # answered already
    status, _, _ = init.http("POST", "/invocation/rid-1/error", b"{}")
    assert status == 403
    status, _, _ = init.http("GET", "/no/such/route")
    assert status == 404
    status, _, body = init.http("POST", "/init/error", b"{}")
    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"  # init is over


def test_error_post_with_its_type_header(init: InitUnderTest) -> None:
    init.invoke("rid-1")
    body = b'{"errorMessage": "bad", "errorType": "MyError", "stackTrace": []}'
    status, _, _ = init.http("POST", "/invocation/rid-1/error", body,
                             {"Lambda-Runtime-Function-Error-Type": "MyError",
                              "Content-Type": "application/vnd.aws.lambda.error+json"})
    assert status == 202
    kind, meta, payload = init.frame()
    assert (kind, meta["error_type"], payload) == (protocol.ERROR, "MyError", body)


def test_too_large_response_is_413(init: InitUnderTest) -> None:
    init.invoke("rid-1")
    status, _, body = init.http("POST", "/invocation/rid-1/response", b"x" * (MAX_RESPONSE + 1))
    assert status == 413
    assert json.loads(body) == {
        "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).",
        "errorType": "RequestEntityTooLarge"}
    kind, meta, payload = init.frame()
    assert (kind, meta["error_type"]) == (protocol.ERROR, "Function.ResponseSizeTooLarge")
    assert json.loads(payload)["errorMessage"] == (
        f"Response payload size ({MAX_RESPONSE + 1} bytes) exceeded maximum allowed payload size "
        f"({MAX_RESPONSE} bytes).")


def test_a_response_of_exactly_the_limit_is_accepted(init: InitUnderTest) -> None:
    init.invoke("rid-1")
    status, _, _ = init.http("POST", "/invocation/rid-1/response", b"x" * MAX_RESPONSE)
    assert status == 202
    assert init.frame()[0] == protocol.RESPONSE


def test_init_error_before_the_first_next(init: InitUnderTest) -> None:
    body = b'{"errorMessage": "no config", "errorType": "Runtime.ConfigError", "stackTrace": []}'
    status, _, _ = init.http("POST", "/init/error", body,
                             {"Lambda-Runtime-Function-Error-Type": "Runtime.ConfigError"})
    assert status == 202
    kind, meta, payload = init.frame()
    assert (kind, meta["error_type"], payload) == (protocol.INIT_ERROR, "Runtime.ConfigError", body)
    status, _, _ = init.http("POST", "/init/error", body)
    assert status == 403  # once only


def test_asking_for_more_work_without_answering_fails_the_invocation(init: InitUnderTest) -> None:
    init.invoke("rid-1")
    pending = init.next_in_background()
    kind, meta, _ = init.frame()
    assert (kind, meta["request_id"]) == (protocol.ERROR, "rid-1")
    init.send(protocol.INVOKE, {"request_id": "rid-2", "deadline_ms": 1, "invoked_arn": "a"}, b"[]")
    pending["thread"].join(10)
    assert pending["reply"][1]["lambda-runtime-aws-request-id"] == "rid-2"


def test_connection_close_is_honoured_even_on_a_parked_next(init: InitUnderTest) -> None:
    """Clients without keep-alive (a C bootstrap reading to EOF) send `Connection: close`."""
    result: dict[str, Any] = {}

    def raw_next() -> None:
        with socket.create_connection(("127.0.0.1", init.port), timeout=10) as s:
            s.sendall(f"GET {BASE}/invocation/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            result["raw"] = b"".join(chunks)

    thread = threading.Thread(target=raw_next, daemon=True)
    thread.start()
    assert init.frame()[0] == protocol.READY
    init.send(protocol.INVOKE, {"request_id": "rid-1", "deadline_ms": 1, "invoked_arn": "a"}, b'"event"')
    thread.join(10)
    head, _, body = result["raw"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert body == b'"event"'


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


def deploy(lam: Any, files: dict[str, str | bytes], runtime: str = "provided.al2023",
           modes: dict[str, int] | None = None, **config: Any) -> str:
    name = unique("custom")
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="function.handler",
                        Code={"ZipFile": make_zip(files, modes=modes)}, **config)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


PYTHON_BOOTSTRAP = '''#!/usr/bin/python3
import http.client, json, os, sys, time
API = os.environ["AWS_LAMBDA_RUNTIME_API"]
MODE = os.environ.get("MODE", "")

def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(API)
    conn.request(method, "/2018-06-01/runtime" + path, body=body, headers=headers or {})
    reply = conn.getresponse()
    return reply.status, reply.headers, reply.read()

print("init mode", MODE, flush=True)
if MODE == "init-error":
    call("POST", "/init/error", json.dumps({"errorMessage": "cannot start", "errorType": "Custom.InitFailed"}),
         {"Lambda-Runtime-Function-Error-Type": "Custom.InitFailed"})
    sys.exit(1)
if MODE == "exit-at-init":
    sys.exit(7)
if MODE == "never-next":
    time.sleep(3600)
while True:
    _, headers, event = call("GET", "/invocation/next")
    rid = headers["Lambda-Runtime-Aws-Request-Id"]
    op = json.loads(event).get("op")
    if op == "too-large":
        call("POST", "/invocation/%s/response" % rid, b"x" * 7000000)
    elif op == "bare-error":
        call("POST", "/invocation/%s/error" % rid, b"", {"Lambda-Runtime-Function-Error-Type": "Custom.Bare"})
    else:
        call("POST", "/invocation/%s/response" % rid, event)
'''


def needs_host_python() -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no /usr/bin/python3 on this host for a Python bootstrap")


def test_init_error_posted_by_the_bootstrap(lam: Any) -> None:
    needs_host_python()
    name = deploy(lam, {"bootstrap": PYTHON_BOOTSTRAP}, Environment={"Variables": {"MODE": "init-error"}})
    r = invoke(lam, name, {}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result == {"errorMessage": "cannot start", "errorType": "Custom.InitFailed"}
    assert "init mode init-error" in r.log
    assert re.search(r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: invoke\tStatus: error\tError Type: "
                     r"Custom.InitFailed", r.log), r.log


def test_bootstrap_that_exits_during_init(lam: Any) -> None:
    needs_host_python()
    name = deploy(lam, {"bootstrap": PYTHON_BOOTSTRAP}, Environment={"Variables": {"MODE": "exit-at-init"}})
    r = invoke(lam, name, {})
    assert r.function_error == "Unhandled"
    assert r.result == {"errorMessage": f"RequestId: {r.request_id} Error: Runtime exited with error: exit status 7",
                        "errorType": "Runtime.ExitError"}


def test_bootstrap_that_never_asks_for_work_hits_the_init_timeout(lam: Any) -> None:
    """10 s for the first init, then the retried init runs within the invocation's timeout."""
    needs_host_python()
    name = deploy(lam, {"bootstrap": PYTHON_BOOTSTRAP}, Timeout=1, Environment={"Variables": {"MODE": "never-next"}})
    started = time.monotonic()
    r = invoke(lam, name, {}, LogType="Tail")
    assert time.monotonic() - started >= 10
    assert r.function_error == "Unhandled"
    assert r.result == {"errorMessage": f"RequestId: {r.request_id} Error: Task timed out after 1.00 seconds",
                        "errorType": "Sandbox.Timedout"}
    assert re.search(r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: invoke\tStatus: timeout", r.log), r.log


def test_too_large_response_and_bare_error(lam: Any) -> None:
    needs_host_python()
    name = deploy(lam, {"bootstrap": PYTHON_BOOTSTRAP})
    r = invoke(lam, name, {"op": "too-large"})
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Function.ResponseSizeTooLarge"
    assert "exceeded maximum allowed payload size (6291556 bytes)" in r.result["errorMessage"]
    r = invoke(lam, name, {"op": "bare-error"})
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Custom.Bare"  # built from the header: no body was posted
    assert invoke(lam, name, {"op": "echo"}).result == {"op": "echo"}


@pytest.mark.parametrize(
    ("files", "modes", "problem"),
    [
        ({"function.sh": "echo"}, None, "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"),
        ({"bootstrap": "#!/bin/sh\n"}, {"bootstrap": 0o644}, "fork/exec /var/task/bootstrap: permission denied"),
        ({"bootstrap": "echo no interpreter line\n"}, None, "fork/exec /var/task/bootstrap: exec format error"),
    ],
    ids=["missing", "not-executable", "not-a-program"],
)
def test_invalid_entrypoint(lam: Any, files: dict[str, str | bytes], modes: dict[str, int] | None,
                            problem: str) -> None:
    name = deploy(lam, files, modes=modes)
    r = invoke(lam, name, {}, LogType="Tail")
    assert (r.status, r.function_error) == (200, "Unhandled")
    assert r.result == {"errorMessage": f"RequestId: {r.request_id} Error: {problem}",
                        "errorType": "Runtime.InvalidEntrypoint"}
    assert re.search(r"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: invoke\tStatus: error\tError Type: "
                     r"Runtime.InvalidEntrypoint", r.log), r.log
    assert f"RequestId: {r.request_id} Error: {problem}\nRuntime.InvalidEntrypoint" in r.log


def test_static_c_bootstrap(lam: Any, tmp_path: Path) -> None:
    binary = fn.compile_c(fn.C, tmp_path, static=True)
    name = deploy(lam, {"bootstrap": binary}, runtime="provided.al2")
    event = {"op": "echo", "static": True}
    assert invoke(lam, name, event).result == event
