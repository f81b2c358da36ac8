"""The built-in Python runtime against a fake Runtime API, on every CPython runtime found here.

Each test runs the runtime in a subprocess (`python -m lambdastack.runtime.python.bootstrap`)
against a small threaded Runtime API server that queues events and records what the runtime
posts. The differential tests run the same functions under the real `awslambdaric` and
compare what both post and print.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
RUNTIME_MODULE = "lambdastack.runtime.python.bootstrap"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
NEXT = "/2018-06-01/runtime/invocation/next"
INIT_ERROR = "/2018-06-01/runtime/init/error"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
NBSP = "\u00a0"

FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2024/03/05/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_REGION": "us-east-1",
    "TZ": ":UTC",
}


def find_pythons() -> list[tuple[str, str]]:
    """(version, interpreter) for the running Python and each pyenv CPython 3.9-3.13 present."""
    found = {"{}.{}".format(*sys.version_info[:2]): sys.executable}
    for path in sorted(glob.glob("/root/.pyenv/versions/3.*/bin/python3.*")):
        m = re.search(r"/versions/(3\.\d+)[^/]*/bin/python(3\.\d+)$", path)
        if m and m.group(1) == m.group(2) and 9 <= int(m.group(1).split(".")[1]) <= 13:
            found.setdefault(m.group(1), path)
    return sorted(found.items(), key=lambda item: int(item[0].split(".")[1]))


PYTHONS = find_pythons()


@pytest.fixture(params=[p for _, p in PYTHONS], ids=["py" + v for v, _ in PYTHONS])
def python(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------------------- fake Runtime API


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRuntimeApi:
    """A Runtime API that serves queued events and records every post."""

    close_after_response: bool = False  # drop the connection after each answer, as an idle timeout would
    chunked: bool = False  # send events with Transfer-Encoding: chunked
    posts: list[Post] = field(default_factory=list)
    connections: int = 0
    next_calls: int = 0

    def __post_init__(self) -> None:
        self.events: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        self.changed = threading.Condition()
        self.closed = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def add_event(
        self,
        payload: Any = None,
        *,
        body: bytes | None = None,
        request_id: str | None = None,
        content_type: str | None = "application/json",
        deadline_ms: int | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> str:
        rid = request_id or str(uuid.uuid4())
        hdrs: dict[str, str | None] = {
            "Lambda-Runtime-Aws-Request-Id": rid,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms or int(time.time() * 1000) + 60_000),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
            "Content-Type": content_type,
        }
        hdrs.update(headers or {})
        data = body if body is not None else json.dumps(payload).encode()
        self.events.put(({k: v for k, v in hdrs.items() if v is not None}, data))
        return rid

    def wait_posts(self, count: int, timeout: float = 30) -> list[Post]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.posts) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} posts, got {len(self.posts)}: {self.posts!r}")
                self.changed.wait(left)
            return list(self.posts)

    def close(self) -> None:
        self.closed = True
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                api.connections += 1

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != NEXT:
                    self._reply(404, b"{}")
                    return
                api.next_calls += 1
                while True:
                    try:
                        headers, body = api.events.get(timeout=0.2)
                        break
                    except queue.Empty:
                        if api.closed:
                            self.close_connection = True
                            return
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                if api.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 7):
                        part = body[i : i + 7]
                        self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                if api.close_after_response:
                    self.close_connection = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with api.changed:
                    api.posts.append(post)
                    api.changed.notify_all()
                self._reply(202, b'{"status":"OK"}')
                if api.close_after_response:
                    self.close_connection = True

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    server = FakeRuntimeApi()
    yield server
    server.close()


# ---------------------------------------------------------------------------- running a function


@dataclass
class Run:
    posts: list[Post]
    stdout: str
    stderr: str
    returncode: int | None
    frames: list[tuple[int, str]] = field(default_factory=list)  # (type, message) from the telemetry descriptor


def write_task(task: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = task / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))


def runtime_command(python: str, handler: str, ric: bool = False) -> list[str]:
    return [python, "-m", "awslambdaric" if ric else RUNTIME_MODULE, handler]


def runtime_env(api: FakeRuntimeApi, task: Path, env: dict[str, str] | None, ric: bool = False) -> dict[str, str]:
    result = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(task),
        "PYTHONDONTWRITEBYTECODE": "1",
        **FUNCTION_ENV,
    }
    if not ric:
        result["PYTHONPATH"] = str(SRC)
    result.update(env or {})
    return result


def run_function(
    python: str,
    task: Path,
    api: FakeRuntimeApi,
    files: dict[str, str],
    posts: int,
    *,
    handler: str = "app.handler",
    env: dict[str, str] | None = None,
    ric: bool = False,
    exits: bool = False,
    telemetry: bool = False,
) -> Run:
    """Start the runtime, wait for `posts` posts (or its exit, for init errors), then stop it.

    With telemetry, log records go as frames to a pipe named by `_LAMBDA_TELEMETRY_LOG_FD`.
    """
    task.mkdir(parents=True, exist_ok=True)
    write_task(task, files)
    environ = runtime_env(api, task, env, ric)
    read_end, write_end = os.pipe() if telemetry else (-1, -1)
    if telemetry:
        environ["_LAMBDA_TELEMETRY_LOG_FD"] = str(write_end)
    proc = subprocess.Popen(
        runtime_command(python, handler, ric),
        cwd=task,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(write_end,) if telemetry else (),
    )
    if telemetry:
        os.close(write_end)
    try:
        if exits:
            proc.wait(60)
            got = list(api.posts)
        else:
            got = api.wait_posts(posts)
            time.sleep(0.05)  # let the runtime finish writing what follows its post
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    run = Run(got, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), proc.returncode)
    if telemetry:
        with os.fdopen(read_end, "rb") as pipe:
            run.frames = read_frames(pipe.read())
    return run


def read_frames(data: bytes) -> list[tuple[int, str]]:
    """Telemetry frames: type (4 bytes) | length (4) | timestamp in microseconds (8) | message, big-endian."""
    frames = []
    now_us = time.time() * 1e6
    while data:
        kind, length, stamp = struct.unpack(">IIQ", data[:16])
        assert now_us - 120e6 < stamp <= now_us + 1e6
        frames.append((kind, data[16 : 16 + length].decode()))
        data = data[16 + length :]
    return frames


def expect_ok(post: Post, rid: str) -> Any:
    assert post.path == f"/2018-06-01/runtime/invocation/{rid}/response", post
    assert post.headers["content-type"] == "application/json"
    return post.json()


def expect_error(post: Post, rid: str, error_type: str) -> dict[str, Any]:
    assert post.path == f"/2018-06-01/runtime/invocation/{rid}/error", post
    assert post.headers["content-type"] == "application/json"
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    doc = post.json()
    assert list(doc) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert doc["errorType"] == error_type
    assert doc["requestId"] == rid
    return dict(doc)


def xray(post: Post) -> dict[str, Any]:
    return dict(json.loads(post.headers["lambda-runtime-function-xray-error-cause"]))


# ---------------------------------------------------------------------------- results and context

ECHO = """
import decimal, collections
Point = collections.namedtuple("Point", "x y")
def handler(event, context):
    return {"echo": event, "n": 1.5, "d": decimal.Decimal("1.10"), "t": (1, 2), "p": Point(1, 2),
            "u": "\u00e9\u4e2d", "none": None, "nan": float("nan")}
"""


def test_result_round_trip(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({"a": [1, 2], "s": "x\u00e9"})
    run = run_function(python, tmp_path / "task", api, {"app.py": ECHO}, 1)
    post = run.posts[0]
    expect_ok(post, rid)
    assert post.body == (
        b'{"echo": {"a": [1, 2], "s": "x\\u00e9"}, "n": 1.5, "d": 1.10, "t": [1, 2], "p": {"x": 1, "y": 2}, '
        b'"u": "\\u00e9\\u4e2d", "none": null, "nan": NaN}'
    )
    assert "lambda-runtime-function-error-type" not in post.headers


def test_non_ascii_kept_on_python312_and_later_runtimes(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    source = """
    def handler(event, context):
        if event == 'fail':
            raise ValueError('\u00e9')
        return '\u00e9'
    """
    rid = api.add_event("ok")
    rid2 = api.add_event("fail")
    run = run_function(
        python, tmp_path / "task", api, {"app.py": source}, 2, env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}
    )
    expect_ok(run.posts[0], rid)
    assert run.posts[0].body == '"\u00e9"'.encode()
    expect_error(run.posts[1], rid2, "ValueError")
    assert b'"errorMessage": "\xc3\xa9"' in run.posts[1].body


CONTEXT = """
import os
def handler(event, context):
    identity = context.identity
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [type(identity).__name__, identity.cognito_identity_id, identity.cognito_identity_pool_id],
        "client_context": context.client_context,
        "tenant_id": context.tenant_id,
        "remaining": context.get_remaining_time_in_millis(),
        "w3c": context.w3c(),
        "repr": repr(context),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "type": type(context).__name__,
    }
"""


def test_context_attributes(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({}, deadline_ms=int(time.time() * 1000) + 30_000)
    run = run_function(python, tmp_path / "task", api, {"app.py": CONTEXT}, 1)
    doc = expect_ok(run.posts[0], rid)
    remaining = doc.pop("remaining")
    assert 20_000 < remaining <= 30_000
    env = FUNCTION_ENV
    assert doc == {
        "aws_request_id": rid,
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": ARN,
        "memory_limit_in_mb": "256",
        "log_group_name": env["AWS_LAMBDA_LOG_GROUP_NAME"],
        "log_stream_name": env["AWS_LAMBDA_LOG_STREAM_NAME"],
        "identity": ["CognitoIdentity", None, None],
        "client_context": None,
        "tenant_id": None,
        "w3c": {},
        "repr": (
            "LambdaContext([aws_request_id={},log_group_name=/aws/lambda/fn,log_stream_name={},function_name=fn,"
            "memory_limit_in_mb=256,function_version=$LATEST,invoked_function_arn={},client_context=None,"
            "identity=CognitoIdentity([cognito_identity_id=None,cognito_identity_pool_id=None]),tenant_id=None])"
        ).format(rid, env["AWS_LAMBDA_LOG_STREAM_NAME"], ARN),
        "trace": None,
        "type": "LambdaContext",
    }


CLIENT_CONTEXT = """
def handler(event, context):
    cc = context.client_context
    c = cc.client
    return {
        "client": [c.installation_id, c.app_title, c.app_version_name, c.app_version_code, c.app_package_name],
        "custom": cc.custom, "env": cc.env, "w3c": context.w3c(), "repr": repr(cc),
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "tenant_id": context.tenant_id,
    }
"""


def test_client_context_cognito_identity_and_tenant(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    client_context = {
        "client": {"installation_id": "i-1", "app_title": "App", "app_version_name": "1.0",
                   "app_version_code": "100", "app_package_name": "com.example"},
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "w3c": {"traceparent": "00-abc-def-01", "tracestate": 5, "other": "x"},
    }  # fmt: skip
    cognito = {"cognitoIdentityId": "us-east-1:id", "cognitoIdentityPoolId": "us-east-1:pool"}
    rid = api.add_event(
        {},
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(client_context),
            "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
            "Lambda-Runtime-Aws-Tenant-Id": "tenant-a",
        },
    )
    run = run_function(python, tmp_path / "task", api, {"app.py": CLIENT_CONTEXT}, 1)
    assert expect_ok(run.posts[0], rid) == {
        "client": ["i-1", "App", "1.0", "100", "com.example"],
        "custom": {"k": "v"},
        "env": {"platform": "Android"},
        "w3c": {"traceparent": "00-abc-def-01"},
        "repr": "ClientContext([custom={'k': 'v'},env={'platform': 'Android'},client=Client([installation_id=i-1,"
        "app_title=App,app_version_name=1.0,app_version_code=100,app_package_name=com.example])])",
        "identity": ["us-east-1:id", "us-east-1:pool"],
        "tenant_id": "tenant-a",
    }


def test_bad_client_context_is_a_context_unmarshal_error(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({}, headers={"Lambda-Runtime-Client-Context": "{not json"})
    rid2 = api.add_event({}, headers={"Lambda-Runtime-Cognito-Identity": "[1,"})
    run = run_function(python, tmp_path / "task", api, {"app.py": CONTEXT}, 2)
    doc = expect_error(run.posts[0], rid, "Runtime.LambdaContextUnmarshalError")
    assert doc["errorMessage"] == (
        "Unable to parse Client Context JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )
    assert doc["stackTrace"] == []
    doc = expect_error(run.posts[1], rid2, "Runtime.LambdaContextUnmarshalError")
    assert doc["errorMessage"].startswith("Unable to parse Cognito Identity JSON: Expecting value")


def test_trace_id_environment_variable(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
    api.add_event({}, headers={"Lambda-Runtime-Trace-Id": trace})
    api.add_event({})
    run = run_function(python, tmp_path / "task", api, {"app.py": CONTEXT}, 2)
    assert [p.json()["trace"] for p in run.posts] == [trace, None]


def test_remaining_time(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    source = """
    import time
    def handler(event, context):
        first = context.get_remaining_time_in_millis()
        time.sleep(0.2)
        return [first, context.get_remaining_time_in_millis()]
    """
    api.add_event({}, deadline_ms=int(time.time() * 1000) + 5_000)
    api.add_event({}, deadline_ms=int(time.time() * 1000) - 5_000)
    run = run_function(python, tmp_path / "task", api, {"app.py": source}, 2)
    (first, second), past = run.posts[0].json(), run.posts[1].json()
    assert 0 < second <= first - 190 and first <= 5_000
    assert past == [0, 0]


def test_warm_state_survives_between_invocations(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    source = """
    import os
    COUNT = 0
    INIT_PID = os.getpid()
    def handler(event, context):
        global COUNT
        COUNT += 1
        return [COUNT, os.getpid() == INIT_PID]
    """
    for _ in range(3):
        api.add_event({})
    run = run_function(python, tmp_path / "task", api, {"app.py": source}, 3)
    assert [p.json() for p in run.posts] == [[1, True], [2, True], [3, True]]
    assert api.connections == 1  # one keep-alive connection for every request


def test_package_handler_and_sys_path(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    source = """
    import os, sys
    def handler(event, context):
        return {"path": sys.path[:3], "cwd": os.getcwd(), "module": __name__}
    """
    task = tmp_path / "task"
    rid = api.add_event({})
    run = run_function(python, task, api, {"pkg/__init__.py": "", "pkg/mod.py": source}, 1, handler="pkg/mod.handler")
    version = "python" + python_version(python)
    assert expect_ok(run.posts[0], rid) == {
        "path": [str(task), f"/opt/python/lib/{version}/site-packages", "/opt/python"],
        "cwd": str(task),
        "module": "pkg.mod",
    }


def python_version(python: str) -> str:
    return subprocess.check_output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).decode().strip()


def test_chunked_events_and_bytes_for_other_content_types(python: str, tmp_path: Path) -> None:
    api = FakeRuntimeApi(chunked=True)
    try:
        source = "def handler(event, context):\n    return repr(event)\n"
        rid = api.add_event({"long": "x" * 100})
        rid2 = api.add_event(body=b"\x00raw\xff", content_type="application/octet-stream")
        rid3 = api.add_event(body=b'{"a": 1}', content_type="application/json; charset=utf-8")
        rid4 = api.add_event(body=b"[1]", content_type=None)  # (awslambdaric fails on an event without one)
        run = run_function(python, tmp_path / "task", api, {"app.py": source}, 4)
        assert expect_ok(run.posts[0], rid) == repr({"long": "x" * 100})
        assert expect_ok(run.posts[1], rid2) == repr(b"\x00raw\xff")
        assert expect_ok(run.posts[2], rid3) == repr(b'{"a": 1}')  # only exactly application/json is decoded
        assert expect_ok(run.posts[3], rid4) == repr(b"[1]")
    finally:
        api.close()


def test_reconnects_when_the_server_closes_idle_connections(python: str, tmp_path: Path) -> None:
    api = FakeRuntimeApi(close_after_response=True)
    try:
        rids = [api.add_event({"i": i}) for i in range(4)]
        run = run_function(python, tmp_path / "task", api, {"app.py": "def handler(e, c):\n    return e\n"}, 4)
        assert [expect_ok(p, rid) for p, rid in zip(run.posts, rids, strict=False)] == [{"i": i} for i in range(4)]
        assert api.connections >= 8
    finally:
        api.close()


# ---------------------------------------------------------------------------- errors


RAISES = """
def helper(x):
    raise ValueError("boom %s" % x)

def handler(event, context):
    print("before")
    helper(event["x"])
"""


def test_unhandled_exception_body_stack_trace_and_log(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    task = tmp_path / "task"
    rid = api.add_event({"x": 1})
    run = run_function(python, task, api, {"app.py": RAISES}, 1)
    post = run.posts[0]
    doc = expect_error(post, rid, "ValueError")
    app = str(task / "app.py")
    assert doc == {
        "errorMessage": "boom 1",
        "errorType": "ValueError",
        "requestId": rid,
        "stackTrace": [
            f'  File "{app}", line 7, in handler\n    helper(event["x"])\n',
            f'  File "{app}", line 3, in helper\n    raise ValueError("boom %s" % x)\n',
        ],
    }
    assert xray(post) == {
        "working_directory": str(task),
        "exceptions": [{
            "message": "boom 1", "type": "ValueError",
            "stack": [{"label": "handler", "path": app, "line": 7}, {"label": "helper", "path": app, "line": 3}],
        }],
        "paths": [app],
    }  # fmt: skip
    lines = run.stdout.split("\n")
    assert lines[0] == "before"
    assert lines[1] == "\r".join(
        [
            "[ERROR] ValueError: boom 1",
            "Traceback (most recent call last):",
            NBSP * 2 + f'File "{app}", line 7, in handler',
            NBSP * 4 + 'helper(event["x"])',
            NBSP * 2 + f'File "{app}", line 3, in helper',
            NBSP * 4 + 'raise ValueError("boom %s" % x)',
        ]
    )


def test_bad_event_json_is_an_unmarshal_error(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event(body=b'{"a": 1,}')
    rid2 = api.add_event(body=b"NaN")
    run = run_function(python, tmp_path / "task", api, {"app.py": "def handler(e, c):\n    return e\n"}, 2)
    doc = expect_error(run.posts[0], rid, "Runtime.UnmarshalError")
    assert doc["errorMessage"] == (
        "Unable to unmarshal input: Illegal trailing comma before end of object: line 1 column 8 (char 7)"
    )
    assert doc["stackTrace"] == []
    assert xray(run.posts[0])["exceptions"][0]["type"] == "LambdaValidationError"
    doc = expect_error(run.posts[1], rid2, "Runtime.UnmarshalError")
    assert doc["errorMessage"] == "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"
    assert run.stdout.startswith(
        "[ERROR] Runtime.UnmarshalError: Unable to unmarshal input: Illegal trailing comma before end of object:"
        " line 1 column 8 (char 7)\rTraceback (most recent call last):\n"
    )


def test_marshal_error_and_bytes_result(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    source = """
    def handler(event, context):
        return {"set": {1}} if event == "set" else b"\\x00\\xffraw"
    """
    rid = api.add_event("set")
    rid2 = api.add_event("bytes")
    run = run_function(python, tmp_path / "task", api, {"app.py": source}, 2)
    doc = expect_error(run.posts[0], rid, "Runtime.MarshalError")
    assert doc["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    post = run.posts[1]
    assert post.path.endswith(f"/{rid2}/response")
    assert post.headers["content-type"] == "application/unknown"
    assert post.body == b"\x00\xffraw"


INIT_ERRORS = {
    "malformed": (
        "app",
        {"app.py": "def handler(e, c):\n    return 1\n"},
        "Runtime.MalformedHandlerName",
        "Bad handler 'app': not enough values to unpack (expected 2, got 1)",
    ),
    "builtin": (
        "sys.handler",
        {},
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys as a handler module",
    ),
    "import": (
        "app.handler",
        {"app.py": "import no_such_module_xyz\n"},
        "Runtime.ImportModuleError",
        "Unable to import module 'app': No module named 'no_such_module_xyz'",
    ),
    "missing-module": (
        "nothere.handler",
        {},
        "Runtime.ImportModuleError",
        "Unable to import module 'nothere': No module named 'nothere'",
    ),
    "syntax": ("app.handler", {"app.py": "x = 1\ndef f(:\n    pass\n"}, "Runtime.UserCodeSyntaxError", None),
    "not-found": (
        "pkg/app.nothere",
        {"pkg/__init__.py": "", "pkg/app.py": "def handler(e, c):\n    return 1\n"},
        "Runtime.HandlerNotFound",
        "Handler 'nothere' missing on module 'pkg/app'",
    ),
    "exception": ("app.handler", {"app.py": "import os\nraise KeyError('k')\n"}, "KeyError", "'k'"),
}


@pytest.mark.parametrize("kind", list(INIT_ERRORS))
def test_init_errors(python: str, api: FakeRuntimeApi, tmp_path: Path, kind: str) -> None:
    handler, files, error_type, message = INIT_ERRORS[kind]
    task = tmp_path / "task"
    run = run_function(python, task, api, files, 1, handler=handler, exits=True)
    assert run.returncode == 1
    assert api.next_calls == 0
    [post] = run.posts
    assert post.path == INIT_ERROR
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    doc = post.json()
    assert list(doc) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert doc["errorType"] == error_type and doc["requestId"] == ""
    if kind == "syntax":
        assert doc["errorMessage"].startswith("Syntax error in module 'app': ")
        assert "line 2" in doc["errorMessage"]
        [trace] = doc["stackTrace"]
        assert trace.startswith('  File "%s" Line 2\n    def f(:' % (task / "app.py"))
    else:
        assert doc["errorMessage"] == message
    if kind == "exception":
        app = task / "app.py"
        assert doc["stackTrace"][-1] == f"  File \"{app}\", line 2, in <module>\n    raise KeyError('k')\n"
        assert not any("lambdastack" in frame for frame in doc["stackTrace"])
        assert "importlib" in doc["stackTrace"][0]
    elif kind != "syntax":
        assert doc["stackTrace"] == []
    warning, error = run.stdout.split("\n")[:2]
    assert re.fullmatch(rf"\[WARNING\]\t{TIMESTAMP.pattern}\t\tLAMBDA_WARNING: Unhandled exception\. .*\r", warning)
    assert error.startswith(f"[ERROR] {error_type}: ")
    assert "\rTraceback (most recent call last):" in error


def test_handler_that_is_not_callable(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({})
    run = run_function(python, tmp_path / "task", api, {"app.py": "handler = 42\n"}, 1)
    doc = expect_error(run.posts[0], rid, "TypeError")
    assert doc["errorMessage"] == "'int' object is not callable"
    [frame] = doc["stackTrace"]  # only the runtime's own frame: kept, as the managed runtime does
    assert "lambdastack/runtime/python" in frame


# ---------------------------------------------------------------------------- logging


LOGGING = """
import logging, sys
logger = logging.getLogger()
logger.warning("at init")

def handler(event, context):
    print("printed", event)
    sys.stderr.write("to stderr\\n")
    logger.debug("debug line")
    logger.info("info %s", "line")
    logging.getLogger("child").warning("child warning")
    context.log("context log\\n")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("caught", extra={"extra_field": "v"})
    return "ok"
"""


def test_text_logging_and_print(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({"k": 1})
    run = run_function(python, tmp_path / "task", api, {"app.py": LOGGING}, 1)
    out = TIMESTAMP.sub("<ts>", run.stdout)
    lines = out.split("\n")
    assert lines[:6] == [
        "[WARNING]\t<ts>\t\tat init",
        "printed {'k': 1}",
        f"[WARNING]\t<ts>\t{rid}\tchild warning",
        "context log",
        f"[ERROR]\t<ts>\t{rid}\tcaught",
        "Traceback (most recent call last):",
    ]
    assert "ZeroDivisionError: division by zero" in out
    assert "info line" not in out and "debug line" not in out  # the root logger stays at WARNING
    assert run.stderr == "to stderr\n"


def test_text_logging_with_log_level(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    rid = api.add_event({})
    run = run_function(python, tmp_path / "task", api, {"app.py": LOGGING}, 1, env={"AWS_LAMBDA_LOG_LEVEL": "TRACE"})
    out = TIMESTAMP.sub("<ts>", run.stdout)
    assert f"[DEBUG]\t<ts>\t{rid}\tdebug line\n" in out
    assert f"[INFO]\t<ts>\t{rid}\tinfo line\n" in out


def test_json_logging(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    task = tmp_path / "task"
    rid = api.add_event({"k": 1})
    rid2 = api.add_event({"x": 2})
    source = LOGGING + RAISES.replace("def handler", "def failing")
    source = source.replace('return "ok"', 'return "ok" if event != {"x": 2} else failing(event, context)')
    run = run_function(
        python, task, api, {"app.py": source}, 2, env={"AWS_LAMBDA_LOG_FORMAT": "json", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    )
    records = []
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
        else:
            assert line in ("printed {'k': 1}", "printed {'x': 2}", "context log", "before"), line
    for r in records:
        assert TIMESTAMP.fullmatch(r.pop("timestamp"))
    warning_at_init = records[0]
    assert warning_at_init == {"level": "WARNING", "message": "at init", "logger": "root", "requestId": ""}
    assert records[1] == {"level": "INFO", "message": "info line", "logger": "root", "requestId": rid}
    assert records[2] == {"level": "WARNING", "message": "child warning", "logger": "child", "requestId": rid}
    caught = records[3]
    assert caught["errorType"] == "ZeroDivisionError" and caught["errorMessage"] == "division by zero"
    assert caught["location"] == "%s:handler:16" % (task / "app.py")
    assert caught["extra_field"] == "v" and caught["message"] == "caught" and caught["level"] == "ERROR"
    assert caught["stackTrace"][0].startswith('  File "%s", line 14, in handler\n' % (task / "app.py"))
    unhandled = records[-1]
    assert list(unhandled) == ["level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert unhandled["errorType"] == "ValueError" and unhandled["requestId"] == rid2


@pytest.mark.parametrize("level", [None, "WARNING"])
def test_logs_as_frames_on_the_telemetry_descriptor(
    python: str, api: FakeRuntimeApi, tmp_path: Path, level: str | None
) -> None:
    source = LOGGING.replace('return "ok"', 'return "_LAMBDA_TELEMETRY_LOG_FD" in os.environ').replace(
        "import logging, sys", "import logging, os, sys"
    )
    rid = api.add_event({"k": 1})
    rid2 = api.add_event({"k": 2})
    source = source.replace(
        "def handler(event, context):", "def handler(event, context):\n    if event == {'k': 2}: 1 / 0"
    )
    env = {"AWS_LAMBDA_LOG_LEVEL": level} if level else {}
    run = run_function(python, tmp_path / "task", api, {"app.py": source}, 2, env=env, telemetry=True)
    assert expect_ok(run.posts[0], rid) is False  # the runtime took the variable out of the environment
    expect_error(run.posts[1], rid2, "ZeroDivisionError")
    assert run.stdout == "printed {'k': 1}\n"  # print still goes to stdout
    kinds = [kind for kind, _ in run.frames]
    messages = [TIMESTAMP.sub("<ts>", message) for _, message in run.frames]
    # Text frames are 0xA55A0003; with a log level set, records carry their level's type (WARNING 0x13,
    # ERROR 0x17). The unhandled error report is one ERROR frame with its lines joined by "\n".
    if level:
        assert kinds[:4] == [0xA55A0013, 0xA55A0013, 0xA55A0003, 0xA55A0017]
    else:
        assert kinds[:4] == [0xA55A0003] * 4
    assert messages[:3] == ["[WARNING]\t<ts>\t\tat init\n", f"[WARNING]\t<ts>\t{rid}\tchild warning\n", "context log\n"]
    assert messages[3].startswith(f"[ERROR]\t<ts>\t{rid}\tcaught\nTraceback (most recent call last):\n")
    assert kinds[-1] == 0xA55A0017
    assert messages[-1].startswith("[ERROR] ZeroDivisionError: division by zero\nTraceback (most recent call last):\n")


# ---------------------------------------------------------------------------- zygote entry points


PRELOAD_PROBE = """
import json, os, socket, sys, threading
sys.path.insert(0, %(src)r)
from lambdastack.runtime.python import bootstrap
fds = set(os.listdir("/proc/self/fd"))
bootstrap.preload()
assert threading.active_count() == 1, "preload started a thread"
new_fds = set(os.listdir("/proc/self/fd")) - fds
assert not new_fds, "preload opened descriptors %%r" %% new_fds
assert not __import__("logging").getLogger().handlers, "preload configured logging"

class Recorder:
    imported = []
    def find_spec(self, name, path=None, target=None):
        self.imported.append(name)
        return None
    def invalidate_caches(self):
        pass

recorder = Recorder()
sys.meta_path.insert(0, recorder)
os.environ["_LATE_IMPORTS_FILE"] = %(out)r
import builtins
builtins.__late_imports__ = recorder.imported
bootstrap.main("app.handler")
"""


def test_preload_then_main_imports_nothing_more(python: str, api: FakeRuntimeApi, tmp_path: Path) -> None:
    task = tmp_path / "task"
    out = tmp_path / "late.json"
    source = """
    import builtins, json, os
    def handler(event, context):
        late = [m for m in builtins.__late_imports__ if m != "app"]
        with open(os.environ["_LATE_IMPORTS_FILE"], "w") as f:
            json.dump(late, f)
        return late
    """
    write_task(task, {"app.py": source, "probe.py": PRELOAD_PROBE % {"src": str(SRC), "out": str(out)}})
    api.add_event({})
    env = runtime_env(api, task, None)
    env.pop("PYTHONPATH")
    proc = subprocess.Popen([python, str(task / "probe.py")], cwd=task, env=env, stderr=subprocess.PIPE)
    try:
        [post] = api.wait_posts(1)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert post.json() == [], f"imported after preload: {post.json()!r}\n{err.decode()}"


def test_importing_the_runtime_has_no_side_effects(python: str) -> None:
    probe = textwrap.dedent(
        f"""
        import logging, os, sys, threading
        sys.path.insert(0, {str(SRC)!r})
        environ, stdout, path = dict(os.environ), sys.stdout, list(sys.path)
        import lambdastack.runtime.python as pkg
        names = ["bootstrap", "client", "config", "context", "errors", "handler", "invoke", "jsonerrors",
                 "logs", "marshalling"]
        for name in names:
            __import__("lambdastack.runtime.python." + name)
        assert dict(os.environ) == environ and sys.stdout is stdout and sys.path == path
        assert not logging.getLogger().handlers and threading.active_count() == 1
        assert logging.Formatter.converter is not __import__("time").gmtime
        print("ok")
        """
    )
    assert subprocess.check_output([python, "-c", probe]).decode().strip() == "ok"


# ---------------------------------------------------------------------------- differential: awslambdaric

try:
    import awslambdaric  # noqa: F401

    HAVE_RIC = True
except ImportError:
    HAVE_RIC = False

needs_ric = pytest.mark.skipif(not HAVE_RIC, reason="awslambdaric is not installed (pip install -e '.[test]')")

RUNTIME_FRAME = re.compile(r'  File "[^"]*/(awslambdaric|lambdastack/runtime/python)/[^"]*", line \d+, in \w+\n.*\n')


def normalize_post(post: Post, ours: bool) -> dict[str, Any]:
    headers = dict(post.headers)
    for name in ("host", "user-agent", "accept", "accept-encoding", "content-length"):
        headers.pop(name, None)
    body: Any = post.body
    if post.path.endswith("/error"):
        body = json.loads(post.body)
        body["stackTrace"] = [RUNTIME_FRAME.sub("<runtime frame>", f) for f in body["stackTrace"]]
        if ours and "/invocation/" in post.path:
            # awslambdaric sends the error type header only for init errors; lambdastack always does.
            assert headers.pop("lambda-runtime-function-error-type") == body["errorType"]
        cause = headers.pop("lambda-runtime-function-xray-error-cause", None)
        if cause is not None:
            doc = json.loads(cause)
            for exc in doc["exceptions"]:
                for frame in exc["stack"]:
                    if re.search(r"/(awslambdaric|lambdastack/runtime/python)/", frame["path"]):
                        frame.update(path="<runtime>", line=0, label="<runtime>")
            doc["paths"] = sorted(re.sub(r".*/(awslambdaric|lambdastack/runtime/python)/.*", "<runtime>", p)
                                  for p in doc["paths"])  # fmt: skip
            headers["xray"] = doc
    return {"path": post.path, "headers": headers, "body": body}


RUNTIME_LOG_FRAME = re.compile(
    '\xa0+File "[^"]*/(awslambdaric|lambdastack/runtime/python)/[^"]*", line \\d+, in \\w+\r\xa0+[^\r\n]*'
)


def normalize_stdout(text: str) -> str:
    return RUNTIME_LOG_FRAME.sub("<runtime frame>", TIMESTAMP.sub("<ts>", text))


DIFF_FUNCTION = """
import collections, decimal, json, logging, os, sys
Point = collections.namedtuple("Point", "x y")
logger = logging.getLogger()
logger.warning("init %s", os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
COUNT = 0

class NotJson:
    pass

def nested(n):
    if n == 0:
        raise RuntimeError("deep \\u00e9")
    return nested(n - 1)

def handler(event, context):
    global COUNT
    COUNT += 1
    kind = event.get("kind") if isinstance(event, dict) else "raw"
    print("event", kind, COUNT)
    logger.warning("handling %s", kind)
    logging.getLogger("lib").error("lib error", extra={"kind": kind})
    if kind == "context":
        cc = context.client_context
        return {"repr": repr(context), "cc": repr(cc), "identity": repr(context.identity), "w3c": context.w3c(),
                "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 60000,
                "trace": os.environ.get("_X_AMZN_TRACE_ID"), "tenant": context.tenant_id}
    if kind == "values":
        return {"d": [decimal.Decimal("1.10"), decimal.Decimal("NaN"), decimal.Decimal("-1E+3")],
                "p": Point(1, [Point(2, 3)]), "b": b"bytes", "f": [1.5, float("inf"), -0.0], "i": 2 ** 70,
                "u": "\\u00e9\\u2028\\U0001F600", "t": (1, (2,)), "k": {1: "a", 2.5: "b", None: "c", True: "d"}}
    if kind == "raise":
        nested(2)
    if kind == "chained":
        try:
            {}["missing"]
        except KeyError as e:
            raise ValueError("wrapped") from e
    if kind == "custom":
        class MyError(Exception):
            pass
        raise MyError({"structured": [1, 2]})
    if kind == "exit_code":
        raise SystemError()
    if kind == "set":
        return {1, 2}
    if kind == "not_json":
        return [NotJson()]
    if kind == "bad_key":
        return {(1, 2): 3}
    if kind == "bytes":
        return b"\\x00\\x01"
    if kind == "none":
        return None
    if kind == "log":
        context.log("raw context log line\\n")
        try:
            int("x")
        except ValueError:
            logger.exception("failed to parse")
        return "logged"
    if kind == "raw":
        return repr(event)
    return event
"""

DIFF_EVENTS: list[dict[str, Any]] = [
    {"payload": {"kind": "echo", "nested": {"a": [1, 2.5, None, True]}, "s": "\u00e9"}},
    {
        "payload": {"kind": "context"},
        "headers": {
            "Lambda-Runtime-Trace-Id": "Root=1-abc;Parent=def;Sampled=1",
            "Lambda-Runtime-Client-Context": json.dumps(
                {
                    "client": {"installation_id": "i", "app_title": "t"},
                    "custom": {"c": 1},
                    "env": {"e": 2},
                    "w3c": {"traceparent": "tp", "baggage": "b", "tracestate": None},
                }
            ),
            "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id", "cognitoIdentityPoolId": "p"}),
            "Lambda-Runtime-Aws-Tenant-Id": "tenant-1",
        },
    },
    {"payload": {"kind": "context"}},
    {"payload": {"kind": "values"}},
    {"payload": {"kind": "raise"}},
    {"payload": {"kind": "chained"}},
    {"payload": {"kind": "custom"}},
    {"payload": {"kind": "exit_code"}},
    {"payload": {"kind": "set"}},
    {"payload": {"kind": "not_json"}},
    {"payload": {"kind": "bad_key"}},
    {"payload": {"kind": "bytes"}},
    {"payload": {"kind": "none"}},
    {"payload": {"kind": "log"}},
    {"body": b'{"kind": "bad json",'},
    {"body": b"\xff\xfe"},
    {"body": b"[1, 2]"},
    {"body": b"\x00\x01raw", "content_type": "application/octet-stream"},
    {"payload": {"kind": "context"}, "headers": {"Lambda-Runtime-Client-Context": "{bad"}},
    {"payload": {"kind": "context"}, "headers": {"Lambda-Runtime-Cognito-Identity": "[1,"}},
]

DIFF_ENVS: dict[str, dict[str, str]] = {
    "text": {},
    "text-debug": {"AWS_LAMBDA_LOG_LEVEL": "DEBUG"},
    "json": {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
    "python3.12-env": {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"},
}


def run_both(
    tmp_path: Path, files: dict[str, str], events: list[dict[str, Any]], posts: int, **kwargs: Any
) -> list[Run]:
    runs = []
    for ric in (True, False):
        api = FakeRuntimeApi()
        try:
            for i, event in enumerate(events):
                api.add_event(request_id=f"req-{i}", deadline_ms=int(time.time() * 1000) + 60_000, **event)
            task = tmp_path / ("ric" if ric else "ours") / "task"
            runs.append(run_function(sys.executable, task, api, files, posts, ric=ric, **kwargs))
        finally:
            api.close()
    return runs


def assert_same(ric: Run, ours: Run, tmp_path: Path) -> None:
    def paths(text: str, who: str) -> str:
        return text.replace(str(tmp_path / who / "task"), "<task>")

    ric_posts = [json.loads(paths(json.dumps(normalize_post(p, False), default=repr), "ric")) for p in ric.posts]
    our_posts = [json.loads(paths(json.dumps(normalize_post(p, True), default=repr), "ours")) for p in ours.posts]
    for i, (a, b) in enumerate(zip(ric_posts, our_posts, strict=False)):
        assert b == a, f"post {i} differs"
    assert len(our_posts) == len(ric_posts)
    assert paths(normalize_stdout(ours.stdout), "ours") == paths(normalize_stdout(ric.stdout), "ric")


@needs_ric
@pytest.mark.parametrize("env_name", list(DIFF_ENVS))
def test_same_as_awslambdaric(tmp_path: Path, env_name: str) -> None:
    ric, ours = run_both(tmp_path, {"app.py": DIFF_FUNCTION}, DIFF_EVENTS, len(DIFF_EVENTS), env=DIFF_ENVS[env_name])
    assert_same(ric, ours, tmp_path)


@needs_ric
@pytest.mark.parametrize("env_name", ["text", "json"])
def test_same_telemetry_frames_as_awslambdaric(tmp_path: Path, env_name: str) -> None:
    events = [e for e in DIFF_EVENTS if e.get("payload", {}).get("kind") in ("echo", "raise", "log", "set")]
    ric, ours = run_both(
        tmp_path, {"app.py": DIFF_FUNCTION}, events, len(events), env=DIFF_ENVS[env_name], telemetry=True
    )
    assert_same(ric, ours, tmp_path)
    assert ours.frames, "no frames"
    normalize = [(kind, normalize_stdout(message)) for kind, message in ours.frames]
    expected = [(kind, normalize_stdout(message)) for kind, message in ric.frames]
    strip = lambda text, who: text.replace(str(tmp_path / who / "task"), "<task>")  # noqa: E731
    assert [(k, strip(m, "ours")) for k, m in normalize] == [(k, strip(m, "ric")) for k, m in expected]


@needs_ric
@pytest.mark.parametrize("kind", list(INIT_ERRORS))
@pytest.mark.parametrize("env_name", ["text", "json"])
def test_same_init_errors_as_awslambdaric(tmp_path: Path, kind: str, env_name: str) -> None:
    handler, files, _, _ = INIT_ERRORS[kind]
    ric, ours = run_both(tmp_path, files, [], 1, handler=handler, exits=True, env=DIFF_ENVS[env_name])
    assert ric.returncode == ours.returncode == 1
    assert_same(ric, ours, tmp_path)


@needs_ric
def test_same_init_error_for_handler_that_is_not_callable(tmp_path: Path) -> None:
    ric, ours = run_both(tmp_path, {"app.py": "handler = None\n"}, [{"payload": {}}], 1)
    assert_same(ric, ours, tmp_path)


@needs_ric
def test_event_decoding_same_as_awslambdaric() -> None:
    """Fuzzed documents decode to the same values, or fail with the same message, as in awslambdaric."""
    import random

    from awslambdaric.lambda_runtime_exception import FaultException as RicFault
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    from lambdastack.runtime.python.errors import FaultException
    from lambdastack.runtime.python.marshalling import decode_event

    ric = LambdaMarshaller()

    def outcome(decode: Any, fault: Any, data: bytes) -> tuple[str, str]:
        try:
            return "ok", repr(decode(data))
        except fault as e:
            return "error", e.msg

    base = [
        '{"a": [1, 2.5, {"b": null}], "c": "x\\u00e9\\ud83d\\ude00", "d": true, "e": false}',
        "[]", "{}", '"s"', "-0.5e+3", "[1, [2, [3]]]", '{"k": {"k2": [true, false, null]}}',
    ]  # fmt: skip
    pieces = [
        *'{}[]",:\\ \t\n\r0123456789-+.eEntrufalsNIy\x01\x1fu',
        "\\u", "\\ud800", "NaN", "Infinity", "-Infinity", "\ufeff", "\xef\xbb\xbf", "\u00e9",
    ]  # fmt: skip
    rng = random.Random(20240305)
    docs = ["", " ", "\ufeff", "\ufeff{}", "\xef\xbb\xbf[1]", "1 2", '"\\ud800\\u12"', "01", "1.", "-", "9" * 5000]
    for _ in range(8000):
        doc = list(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            i = rng.randint(0, len(doc))
            op = rng.random()
            if op < 0.4 and doc:
                del doc[min(i, len(doc) - 1)]
            elif op < 0.8:
                doc.insert(i, rng.choice(pieces))
            else:
                doc = doc[:i]
        docs.append("".join(doc))
    for doc in docs:
        data = doc.encode("utf-8", "surrogatepass")
        ours = outcome(lambda d: decode_event(d, "application/json"), FaultException, data)
        assert ours == outcome(lambda d: ric.unmarshal_request(d, "application/json"), RicFault, data), doc


@needs_ric
def test_result_encoding_same_as_awslambdaric() -> None:
    import collections
    import decimal
    import enum

    import simplejson
    from awslambdaric.lambda_runtime_exception import FaultException as RicFault
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    from lambdastack.runtime.python.errors import FaultException
    from lambdastack.runtime.python.marshalling import JsonEncoder, encode_result

    point = collections.namedtuple("point", "a b")

    class Color(enum.IntEnum):
        RED = 3

    class Text(str):
        pass

    class Asdict:
        def _asdict(self) -> Any:
            return {"z": point(1, [point(2, 3)])}

    cycle: list[Any] = []
    cycle.append(cycle)
    values = [
        None, True, 1, -1, 2**70, 1.5, 1e300, -0.0, float("nan"), float("inf"), float("-inf"), "\u00e9\u2028",
        "\x00\x1f\"\\", Text("x"), Color.RED, {"a": 1}, {1: 2, 2.5: 3, None: 4, False: 5}, (1, 2), point(1, 2),
        [point(1, point(2, 3))], {"n": point(1, 2)}, {b"k": b"v"}, b"top", [b"\xff"], {(1, 2): 3},
        decimal.Decimal("1.10"), decimal.Decimal("NaN"), decimal.Decimal("sNaN"), decimal.Decimal("-Infinity"),
        decimal.Decimal("1E+2"), {"d": decimal.Decimal("-0")}, Asdict(), {1, 2}, object(), cycle, {"a": cycle},
        simplejson.RawJSON('{"raw": 1}'), {decimal.Decimal(1): 1}, {"g": (i for i in [])}, [[[[["deep"]]]]],
    ]  # fmt: skip
    for execution_env in (None, "AWS_Lambda_python3.12"):
        saved = os.environ.pop("AWS_EXECUTION_ENV", None)
        if execution_env:
            os.environ["AWS_EXECUTION_ENV"] = execution_env
        try:
            ric = LambdaMarshaller()
        finally:
            os.environ.pop("AWS_EXECUTION_ENV", None)
            if saved is not None:
                os.environ["AWS_EXECUTION_ENV"] = saved
        ours = JsonEncoder(ensure_ascii=execution_env is None)
        for value in values:
            try:
                body, content_type = ric.marshal_response(value)
                expected: Any = (body if isinstance(body, bytes) else body.encode(), content_type)
            except RicFault as e:
                expected = e.msg
            try:
                got: Any = encode_result(ours, value)
            except FaultException as e:
                got = e.msg
            assert got == expected, (execution_env, value)


# ---------------------------------------------------------------------------- client overhead

FAST_SERVER = r"""
import socket, sys, time
count = int(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
event = b'{"key": "value", "n": 1}'
deadline = str(int(time.time() * 1000) + 3600000).encode()
buf = b""
served = 0
while True:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            sys.exit(0)
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buf) < length:
        buf += conn.recv(65536)
    buf = buf[length:]
    if head.startswith(b"GET"):
        if served == count:
            conn.close()
            listener.close()
            print(served, flush=True)
            sys.exit(0)
        served += 1
        conn.sendall((b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: 8476a536-e9f4-11e8-9739-%012d\r\n"
                      b"Lambda-Runtime-Deadline-Ms: %s\r\nLambda-Runtime-Invoked-Function-Arn: "
                      b"arn:aws:lambda:us-east-1:123456789012:function:fn\r\nLambda-Runtime-Trace-Id: Root=1-5bef4de7;"
                      b"Sampled=0\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
                     % (served, deadline, len(event), event))
    else:
        conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                     b'{"status": "OK"}')
"""


RAW_CLIENT = r"""
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
get = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
post = (b"POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 24\r\n\r\n{\"key\": \"value\", \"n\": 1}")
while True:
    sock.sendall(get)
    if not sock.recv(65536):
        break
    sock.sendall(post)
    sock.recv(65536)
"""


def cpu_seconds(client: str, task: Path, count: int) -> float:
    """CPU time (user + system) of a client process that serves `count` events, from start to exit.

    client: "ours", "ric", or "raw" (the same socket exchanges with no HTTP or Python work around them).
    """
    server = subprocess.Popen([sys.executable, "-c", FAST_SERVER, str(count)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        api = type("Api", (), {"address": f"127.0.0.1:{port}"})()
        env = runtime_env(api, task, None, client == "ric")  # type: ignore[arg-type]
        if client == "raw":
            command = [sys.executable, "-c", RAW_CLIENT, str(port)]
        else:
            command = runtime_command(sys.executable, "app.handler", client == "ric")
        proc = subprocess.Popen(command, cwd=task, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        assert int(server.stdout.readline()) == count, "the client did not serve every event"
        return float(usage.ru_utime + usage.ru_stime)
    finally:
        server.kill()
        server.wait(30)


def per_invocation_cpu(clients: list[str], task: Path, low: int = 1000, high: int = 6000) -> dict[str, float]:
    """CPU per invocation of each client: the difference of two runs, so that start-up and init cancel out.

    Runs alternate between the clients and the median of three is kept, as the machine may be busy.
    """
    samples: dict[str, list[float]] = {c: [] for c in clients}
    for _ in range(3):
        for c in clients:
            samples[c].append((cpu_seconds(c, task, high) - cpu_seconds(c, task, low)) / (high - low))
    return {c: sorted(v)[1] for c, v in samples.items()}


def test_client_overhead_per_invocation(tmp_path: Path) -> None:
    task = tmp_path / "task"
    write_task(task, {"app.py": "def handler(event, context):\n    return event\n"})
    clients = ["ours", "raw"] + (["ric"] if HAVE_RIC else [])
    cpu = per_invocation_cpu(clients, task)
    us = {c: v * 1e6 for c, v in cpu.items()}
    report = (
        f"CPU per invocation: lambdastack runtime {us['ours']:.1f} us, the bare socket exchanges {us['raw']:.1f} us"
        f" (so {us['ours'] - us['raw']:.1f} us of client work)"
    )
    if HAVE_RIC:
        report += f"; awslambdaric {us['ric']:.1f} us"
    print("\n" + report)
    # Bounds loose enough for a busy machine; a regression such as a fresh connection or a large
    # read buffer per request shows up well beyond them.
    assert cpu["ours"] - cpu["raw"] < 150e-6, report
    if HAVE_RIC:
        assert cpu["ours"] < cpu["ric"], report


# ---------------------------------------------------------------------------- in-process units


def test_lambda_sys_path_order() -> None:
    from lambdastack.runtime.python.bootstrap import lambda_sys_path

    version = "python{}.{}".format(*sys.version_info[:2])
    path = lambda_sys_path("/var/task", "/var/runtime", ["", "/var/task", "/usr/lib/python3.x", "/opt/python"])
    assert path == [
        "/var/task", f"/opt/python/lib/{version}/site-packages", "/opt/python", "/var/runtime", "/usr/lib/python3.x",
    ]  # fmt: skip


def test_client_speaks_to_a_plain_socket_server() -> None:
    """Responses split across segments, interim 100 responses and bodies up to the connection close."""
    from lambdastack.runtime.python.client import RuntimeApiError, RuntimeClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    replies = [
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: a\r\n", b"Content-Length: 5",
         b"\r\n\r\nhel", b"lo"],
        [b"HTTP/1.0 202 Accepted\r\n\r\n", b"{}"],
        [b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id:  b \r\nLAMBDA-RUNTIME-DEADLINE-MS: 12x\r\n"
         b"Content-Length: 0\r\n\r\n"],
        [b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}"],
    ]  # fmt: skip

    def serve() -> None:
        for reply in replies:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                for part in reply:
                    conn.sendall(part)
                    time.sleep(0.01)
                if reply is not replies[1]:
                    conn.recv(65536)  # the next request proves the connection was kept open

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = RuntimeClient(f"127.0.0.1:{port}")
    inv = client.next()
    assert (inv.request_id, inv.body, inv.deadline_ms, inv.invoked_function_arn) == ("a", b"hello", 0, "")
    client.close()
    client.post_response("a", b"{}", "application/json")  # HTTP/1.0 reply, body up to the close
    inv = client.next()
    assert (inv.request_id, inv.deadline_ms) == ("b", 12)
    client.close()
    with pytest.raises(RuntimeApiError, match="403"):
        client.post_error("b", b"{}", "X", None)
    client.close()
    listener.close()
