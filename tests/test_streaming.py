"""Response streaming: InvokeWithResponseStream through boto3 against a real server.

Functions stream from a custom runtime (a `bootstrap` in Python that posts in streaming mode)
and from Node.js (`awslambda.streamifyResponse`). The caller reads the events as they arrive
(`PayloadChunk`s, then one `InvokeComplete`); a chunk written before a pause is in the
caller's hands before the function goes on. The last part drives an environment's init
directly, with small limits, to see the streamed-size limit and the bandwidth cap applied.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import pytest
import requests
import streaming_functions as fn
from botocore.eventstream import EventStreamBuffer
from helpers import Server, create_function, invoke, stored_log, unique, wait_for
from init_process import InitProcess

from lambdastack.runtime import protocol

PAUSE_S = 1.0  # how long the functions wait between their first and second chunk


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def custom(lam: Any) -> str:
    """A provided.al2023 function whose bootstrap streams every response."""
    return create_function(lam, files={"bootstrap": fn.PYTHON_BOOTSTRAP}, runtime="provided.al2023",
                           handler="stream.handler", Timeout=5)


@pytest.fixture(scope="module")
def node_runtime(server: Server) -> str:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    found = next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)
    if found is None:
        pytest.skip("no Node.js on this host")
    return found


@pytest.fixture(scope="module")
def node(lam: Any, node_runtime: str) -> str:
    return create_function(lam, files={"index.mjs": fn.NODE_STREAMING}, runtime=node_runtime,
                           handler="index.handler", Timeout=3)


@dataclass
class Streamed:
    """What a caller of InvokeWithResponseStream saw, with when each event arrived."""

    status: int
    executed_version: str | None
    content_type: str | None
    request_id: str
    chunks: list[bytes] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)  # seconds after the request was sent
    complete: dict[str, Any] | None = None
    complete_time: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def log(self) -> str:
        assert self.complete is not None
        return base64.b64decode(self.complete.get("LogResult", "")).decode("utf-8", "replace")

    @property
    def error_details(self) -> dict[str, Any]:
        assert self.complete is not None
        return dict(json.loads(self.complete["ErrorDetails"]))


def stream(lam: Any, name: str, event: Any = None, **params: Any) -> Streamed:
    """Invoke with response streaming and read the events one by one, as they arrive."""
    sent = time.monotonic()
    r = lam.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(event or {}).encode(), **params)
    seen = Streamed(status=r["StatusCode"], executed_version=r.get("ExecutedVersion"),
                    content_type=r.get("ResponseStreamContentType"),
                    request_id=r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"])
    for event_ in r["EventStream"]:
        now = time.monotonic() - sent
        if "PayloadChunk" in event_:
            assert seen.complete is None, "a chunk after InvokeComplete"
            seen.chunks.append(event_["PayloadChunk"]["Payload"])
            seen.chunk_times.append(now)
        elif "InvokeComplete" in event_:
            assert seen.complete is None, "two InvokeComplete events"
            seen.complete, seen.complete_time = event_["InvokeComplete"], now
    assert seen.complete is not None, "the stream ended without InvokeComplete"
    return seen


def report_of(log: str, request_id: str) -> str:
    return next(line for line in log.splitlines() if line.startswith(f"REPORT RequestId: {request_id}"))


# ------------------------------------------------------------------------------ streaming as it happens


def test_chunks_reach_the_caller_as_the_custom_runtime_writes_them(lam: Any, custom: str) -> None:
    r = stream(lam, custom, {"chunks": ["first,", "second,", "third"], "pause": PAUSE_S}, LogType="Tail")
    assert (r.status, r.executed_version, r.content_type) == (200, "$LATEST", "text/plain")
    assert r.body == b"first,second,third"
    assert r.complete is not None and "ErrorCode" not in r.complete
    # The function paused after each chunk: each was with the caller a pause before the next
    # (a buffered answer would bring them all at once, at the end).
    assert len(r.chunks) == 3, r.chunks
    gaps = [later - earlier for earlier, later in zip(r.chunk_times, r.chunk_times[1:], strict=False)]
    assert min(gaps) > PAUSE_S / 2, r.chunk_times
    lines = r.log.splitlines()
    assert lines[0] == f"START RequestId: {r.request_id} Version: $LATEST"
    assert f"streaming for {r.request_id}" in lines
    assert f"END RequestId: {r.request_id}" in lines
    report = re.match(r"REPORT RequestId: \S+\tDuration: (\d+\.\d\d) ms\t", report_of(r.log, r.request_id))
    assert report is not None
    assert float(report.group(1)) >= 2 * PAUSE_S * 1000  # the whole stream is the invocation's duration


def test_node_streamify_response(lam: Any, node: str) -> None:
    r = stream(lam, node, {"chunks": ["Hello, ", "streaming ", "world"], "pause": PAUSE_S}, LogType="Tail")
    assert (r.status, r.content_type, r.body) == (200, "text/plain", b"Hello, streaming world")
    assert r.complete is not None and "ErrorCode" not in r.complete
    assert r.chunk_times[1] - r.chunk_times[0] > PAUSE_S / 2, r.chunk_times
    body = [line.split("\t") for line in r.log.splitlines()[1:-2]]
    assert [b[1:] for b in body] == [[r.request_id, "INFO", f"streaming for {r.request_id} {node}"]], r.log


def test_node_pipeline_into_the_response_stream(lam: Any, node: str) -> None:
    r = stream(lam, node, {"pipeline": ["piped ", "from ", "a readable"]})
    assert (r.body, r.complete) == (b"piped from a readable", {})


def test_node_http_response_stream_prelude(lam: Any, node: str) -> None:
    r = stream(lam, node, {"http": True, "chunks": ["<h1>", "hi</h1>"]})
    assert r.content_type == "application/vnd.awslambda.http-integration-response"
    prelude, delimiter, rest = r.body.partition(b"\0" * 8)
    assert json.loads(prelude) == {"statusCode": 201, "headers": {"x-custom": "yes"}, "cookies": ["a=b"]}
    assert (delimiter, rest) == (b"\0" * 8, b"<h1>hi</h1>")


def test_a_function_that_does_not_stream_comes_as_one_chunk(lam: Any) -> None:
    name = create_function(lam, "def handler(event, context):\n    return {'got': event}\n")
    r = stream(lam, name, {"a": 1})
    assert (r.status, r.content_type, r.chunks, r.complete) == (200, "application/json", [b'{"got": {"a": 1}}'], {})


# ------------------------------------------------------------------------------ errors and limits


def test_error_in_the_trailers_mid_stream(lam: Any, custom: str) -> None:
    r = stream(lam, custom, {"chunks": ["partial"], "fail": True})
    assert r.body == b"partial"
    assert r.complete is not None and r.complete["ErrorCode"] == "Custom.MidStream"
    assert r.error_details == {"errorMessage": "broken mid-stream", "errorType": "Custom.MidStream"}
    r = stream(lam, custom, {"chunks": ["fine"]})  # the environment goes on
    assert (r.body, r.complete) == (b"fine", {})


def test_node_error_mid_stream_and_non_async_handler(lam: Any, node: str, node_runtime: str) -> None:
    r = stream(lam, node, {"chunks": ["partial"], "fail": True}, LogType="Tail")
    assert r.body == b"partial"
    assert r.complete is not None and r.complete["ErrorCode"] == "TypeError"
    details = r.error_details
    assert (details["errorType"], details["errorMessage"]) == ("TypeError", "broken mid-stream")
    assert details["trace"][0] == "TypeError: broken mid-stream"
    assert "\tERROR\tInvoke Error \t" in r.log and "Status: error\tError Type: TypeError" in r.log

    plain = create_function(lam, files={"index.js": fn.NODE_NOT_ASYNC}, runtime=node_runtime,
                            handler="index.handler")
    r = stream(lam, plain)
    assert r.complete is not None and r.complete["ErrorCode"] == "Error"
    assert r.error_details["errorMessage"] == "Streaming does not support non-async handlers."


def test_error_before_any_chunk(lam: Any, custom: str) -> None:
    r = stream(lam, custom, {"error_first": True})
    assert r.chunks == []
    assert r.complete is not None and r.complete["ErrorCode"] == "Custom.Refused"
    assert r.error_details == {"errorMessage": "refused", "errorType": "Custom.Refused"}


def test_timeout_mid_stream(lam: Any, custom: str, server: Server) -> None:
    r = stream(lam, custom, {"chunks": ["before the timeout"], "sleep": 30}, LogType="Tail")
    assert r.body == b"before the timeout"
    assert r.complete is not None and r.complete["ErrorCode"] == "Sandbox.Timedout"
    assert r.error_details == {
        "errorMessage": f"RequestId: {r.request_id} Error: Task timed out after 5.00 seconds",
        "errorType": "Sandbox.Timedout"}
    assert f"{r.request_id} Task timed out after 5.00 seconds" in r.log
    assert report_of(r.log, r.request_id).endswith("Status: timeout\tError Type: Sandbox.Timedout\t")
    # The timed-out environment was replaced: the next invocation starts cold and works.
    r = stream(lam, custom, {"chunks": ["after"]}, LogType="Tail")
    assert r.body == b"after" and r.complete is not None and "ErrorCode" not in r.complete
    assert "Init Duration" in report_of(r.log, r.request_id)


def test_runtime_exit_mid_stream(lam: Any, custom: str) -> None:
    r = stream(lam, custom, {"chunks": ["before the exit"], "exit": True})
    assert r.body == b"before the exit"
    assert r.complete is not None and r.complete["ErrorCode"] == "Runtime.ExitError"
    assert r.error_details["errorMessage"] == (
        f"RequestId: {r.request_id} Error: Runtime exited with error: exit status 3")


def test_more_than_6_mb_streams_but_invoke_refuses_it(lam: Any, custom: str) -> None:
    size = 7_000_000  # past the 6 MB that Invoke returns and that streams at full speed
    r = stream(lam, custom, {"size": size})
    assert (len(r.body), r.body.count(b"x"), r.complete) == (size, size, {})
    buffered = invoke(lam, custom, {"size": size})
    assert buffered.function_error == "Unhandled"
    assert buffered.result["errorType"] == "Function.ResponseSizeTooLarge"


def test_requests_refused_as_invoke_refuses_them(lam: Any, custom: str) -> None:
    def error_of(**params: Any) -> tuple[str, int, str]:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            lam.invoke_with_response_stream(**params)
        e = caught.value.response
        return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]

    missing = unique("missing")
    code, status, message = error_of(FunctionName=missing, Payload=b"{}")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message.startswith("Function not found: arn:aws:lambda:us-east-1:") and message.endswith(
        f"{missing}:$LATEST")
    code, status, message = error_of(FunctionName=custom, Payload=b"{" + b" " * 6_291_456 + b"}")
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert error_of(FunctionName=custom, Payload=b"not json")[:2] == ("InvalidRequestContentException", 400)
    assert error_of(FunctionName=custom, Payload=b"{}", InvocationType="Event")[:2] == ("ValidationException", 400)
    assert error_of(FunctionName=custom, Payload=b"{}", Qualifier="42")[:2] == ("ResourceNotFoundException", 404)


def test_throttled_before_the_stream_starts(lam: Any) -> None:
    name = create_function(lam, files={"bootstrap": fn.PYTHON_BOOTSTRAP}, runtime="provided.al2023",
                           handler="stream.handler")
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException) as caught:
        lam.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


# ------------------------------------------------------------------------------ the rest of the API


def test_buffered_invoke_of_a_streaming_function(lam: Any, custom: str, node: str) -> None:
    r = invoke(lam, custom, {"chunks": ["one ", "two ", "three"]})
    assert (r.status, r.function_error, r.payload) == (200, None, b"one two three")
    r = invoke(lam, node, {"chunks": ["a", "b"]})
    assert (r.function_error, r.payload) == (None, b"ab")
    r = invoke(lam, custom, {"chunks": ["lost"], "fail": True})
    assert r.function_error == "Unhandled"
    assert r.result == {"errorMessage": "broken mid-stream", "errorType": "Custom.MidStream"}


def test_dry_run(lam: Any, custom: str) -> None:
    r = lam.invoke_with_response_stream(FunctionName=custom, InvocationType="DryRun", Payload=b"{}")
    assert (r["StatusCode"], r["ExecutedVersion"]) == (204, "$LATEST")
    assert list(r["EventStream"]) == []


def test_qualifier_alias_and_client_context(lam: Any) -> None:
    name = create_function(lam, files={"bootstrap": fn.PYTHON_BOOTSTRAP}, runtime="provided.al2023",
                           handler="stream.handler")
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    assert stream(lam, name, {"chunks": ["v"]}, Qualifier="live").executed_version == version
    assert stream(lam, f"{name}:{version}", {"chunks": ["v"]}).executed_version == version
    context = {"custom": {"caller": "streaming-test"}, "env": {}, "client": {}}
    r = stream(lam, name, {"client_context": True},
               ClientContext=base64.b64encode(json.dumps(context).encode()).decode())
    assert json.loads(r.body) == context


def test_the_wire_format(server: Server, custom: str) -> None:
    """The raw response: chunked, each event a message with its headers and checksums."""
    with requests.post(f"{server.url}/2021-11-15/functions/{custom}/response-streaming-invocations",
                       data=json.dumps({"chunks": ["a", "b"]}), stream=True, timeout=60) as r:
        assert r.status_code == 200 and r.headers["Transfer-Encoding"] == "chunked"
        assert (r.headers["Content-Type"], r.headers["X-Amz-Executed-Version"]) == ("text/plain", "$LATEST")
        buffer = EventStreamBuffer()  # botocore's decoder: it checks both CRCs of every message
        for piece in r.raw.stream(1024, decode_content=False):
            buffer.add_data(piece)
        messages = list(buffer)
    seen = [(m.headers[":event-type"], m.headers[":message-type"], m.headers[":content-type"]) for m in messages]
    # The chunks come as the function's writes reach the init: "a" and "b" may come as one.
    assert seen[:-1] == [("PayloadChunk", "event", "application/octet-stream")] * (len(messages) - 1)
    assert b"".join(m.payload for m in messages[:-1]) == b"ab"
    assert (seen[-1], messages[-1].payload) == (("InvokeComplete", "event", "application/json"), b"{}")


def test_a_caller_that_goes_away_does_not_stop_the_function(lam: Any, custom: str, server: Server) -> None:
    with requests.post(f"{server.url}/2021-11-15/functions/{custom}/response-streaming-invocations",
                       data=json.dumps({"chunks": ["first", "second"], "pause": PAUSE_S}), stream=True,
                       timeout=60) as r:
        request_id = r.headers["x-amzn-RequestId"]
        next(r.raw.stream(1, decode_content=False))  # the first chunk came; hang up
    # The function ran to its end all the same (as on Lambda), and its environment is fine.
    def ended() -> bool:
        return any(line.startswith(f"END RequestId: {request_id}")
                   for lines in stored_log(server, lam, custom).values() for line in lines)

    assert wait_for(ended, timeout=20)
    r = stream(lam, custom, {"chunks": ["next"]})
    assert (r.body, r.complete) == (b"next", {})


# ------------------------------------------------------------------------------ the init's limits

_LIMITS = """
streaming.MAX_STREAM_BYTES = int(sys.argv[2])
streaming.UNCAPPED_BYTES = int(sys.argv[3])
streaming.CAPPED_BYTES_PER_S = int(sys.argv[4])
"""


class Init(InitProcess):
    """A real init with small streaming limits; the test is both its worker and its runtime."""

    def __init__(self, max_bytes: int, uncapped: int, rate: int) -> None:
        super().__init__(_LIMITS, (str(max_bytes), str(uncapped), str(rate)), timeout=20)

    def invocation(self, request_id: str) -> None:
        """Park the runtime's `next` and hand it one event."""
        self.api = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        self.api.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert self.frame()[0] == protocol.READY
        self.worker.sendall(protocol.encode(protocol.INVOKE, {
            "request_id": request_id, "deadline_ms": 1_900_000_000_000,
            "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:f"}, b"{}"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.api.recv(65536)
        assert request_id.encode() in head

    def start_stream(self, request_id: str) -> None:
        self.api.sendall(
            f"POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: x\r\n"
            "Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: text/plain\r\n\r\n".encode())

    def send_chunks(self, total: int, piece: int = 16384) -> None:
        """Write `total` bytes of chunks from a thread (the init may hold the writes back)."""
        def run() -> None:
            sent = 0
            try:
                while sent < total:
                    n = min(piece, total - sent)
                    self.api.sendall(b"%x\r\n%s\r\n" % (n, b"y" * n))
                    sent += n
            except OSError:
                pass  # the init refused the rest

        self.writer = threading.Thread(target=run, daemon=True)
        self.writer.start()


@pytest.fixture
def small_init(request: pytest.FixtureRequest) -> Iterator[Init]:
    under_test = Init(*request.param)
    yield under_test
    under_test.close()


@pytest.mark.parametrize("small_init", [(1_000_000, 100_000, 10_000_000)], indirect=True)
def test_init_refuses_a_stream_past_the_limit(small_init: Init) -> None:
    init = small_init
    init.invocation("req-big")
    init.start_stream("req-big")
    assert init.frame()[:2] == (protocol.STREAM_START, {"request_id": "req-big", "content_type": "text/plain"})
    init.send_chunks(2_000_000)
    relayed = 0
    while True:
        kind, meta, body = init.frame()
        if kind != protocol.STREAM_CHUNK:
            break
        relayed += len(body)
    assert relayed <= 1_000_000
    assert (kind, meta["request_id"]) == (protocol.ERROR, "req-big")
    assert meta["error_type"] == "Function.ResponseSizeTooLarge"
    assert json.loads(body)["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (1000000 bytes).")
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = init.api.recv(65536)
        assert data
        answer += data
    assert answer.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize("small_init", [(10_000_000, 100_000, 500_000)], indirect=True)
def test_init_holds_a_stream_to_the_bandwidth_cap_past_the_uncapped_part(small_init: Init) -> None:
    init = small_init
    init.invocation("req-capped")
    init.start_stream("req-capped")
    assert init.frame()[0] == protocol.STREAM_START
    total = 100_000 + 500_000  # the uncapped part, then one second's worth at the capped rate
    init.send_chunks(total)
    relayed, first_at = 0, None
    while relayed < total:
        kind, _, body = init.frame()
        assert kind == protocol.STREAM_CHUNK
        first_at = first_at or time.monotonic()
        relayed += len(body)
    assert first_at is not None
    elapsed = time.monotonic() - first_at
    # A lower bound only: the capped 500 KB cannot have come through in much less than a second.
    assert elapsed > 0.7, elapsed
    error_body = base64.b64encode(b'{"errorMessage": "late"}')
    init.api.sendall(b"0\r\nLambda-Runtime-Function-Error-Type: Custom.Late\r\n"
                     b"Lambda-Runtime-Function-Error-Body: " + error_body + b"\r\n\r\n")
    kind, meta, body = init.frame()
    assert (kind, meta["request_id"], meta["error_type"], body) == (
        protocol.STREAM_END, "req-capped", "Custom.Late", b'{"errorMessage": "late"}')


@pytest.mark.parametrize("small_init", [(10_000_000, 100_000, 10_000_000)], indirect=True)
def test_init_refuses_a_stream_for_another_request(small_init: Init) -> None:
    init = small_init
    init.invocation("req-real")
    init.start_stream("req-other")
    init.api.sendall(b"5\r\nhello\r\n0\r\n\r\n")
    answer = b""
    while b"InvalidRequestID" not in answer:
        data = init.api.recv(65536)
        assert data
        answer += data
    assert answer.startswith(b"HTTP/1.1 403 ")
    init.start_stream("req-real")  # the real one still streams, on the same connection
    init.api.sendall(b"2\r\nok\r\n0\r\n\r\n")
    assert init.frame()[0] == protocol.STREAM_START
    assert init.frame()[::2] == (protocol.STREAM_CHUNK, b"ok")
    kind, meta, body = init.frame()
    assert (kind, meta["request_id"], "error_type" in meta, body) == (protocol.STREAM_END, "req-real", False, b"")
