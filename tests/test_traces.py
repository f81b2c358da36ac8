"""Traces: the X-Ray trace header each invocation carries (`_X_AMZN_TRACE_ID`, the Runtime
API's `Lambda-Runtime-Trace-Id`), its propagation from `X-Amzn-Trace-Id` / `traceparent`, and
the platform's spans, received over OTLP/HTTP by a real receiver inside the test."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from helpers import Server, create_function, invoke, wait_for
from otlp_receiver import OtlpReceiver, ReceivedSpan

from bench.common import distribution_files

SEES_TRACE = """
import os

def handler(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "request_id": context.aws_request_id}
"""
NODE_SEES_TRACE = """
exports.handler = async (event, context) => ({trace: process.env._X_AMZN_TRACE_ID, request_id: context.awsRequestId});
"""
HEADER = re.compile(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01])")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("traces") / "data", "--async-time-scale", "0.01", env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_TRACES_SAMPLER_ARG": "1",  # Active samples every request, not 1/s and 5 %
    }).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lam(srv: Server) -> Any:
    return srv.client()


def with_headers(srv: Server, headers: dict[str, str]) -> Any:
    """A Lambda client whose Invoke requests carry `headers` (as an instrumented caller's would)."""
    client = srv.client()

    def add(request: Any, **_: Any) -> None:
        for k, v in headers.items():
            request.headers[k] = v

    client.meta.events.register("before-sign.lambda.*", add)
    return client


def seen(lam: Any, name: str, **params: Any) -> tuple[re.Match[str], str]:
    """The trace header the function saw, and the request id of its invocation."""
    r = invoke(lam, name, {}, **params)
    assert r.status == 200 and r.function_error is None, (r.payload, r.log)
    found = HEADER.fullmatch(r.result["trace"] or "")
    assert found, r.result
    assert r.result["request_id"] == r.request_id
    return found, r.request_id


def trace_id_of(root: str) -> str:
    return root[2:10] + root[11:]


def children(spans: dict[str, ReceivedSpan], parent: ReceivedSpan) -> set[str]:
    return {s.name for s in spans.values() if s.parent_id == parent.span_id}


def test_sync_invocation_span_tree(lam: Any, receiver: OtlpReceiver) -> None:
    name = create_function(lam, SEES_TRACE, TracingConfig={"Mode": "Active"})
    header, request_id = seen(lam, name)
    root, parent, sampled = header.groups()
    assert sampled == "1"
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/Invoke", name, "Admission", "Initialization",
                                                    "Invocation"})
    api, fn = spans["Lambda/Invoke"], spans[name]
    assert api.parent_id == "" and api.kind == "server"
    assert api.attributes["rpc.method"] == "Invoke" and api.attributes["aws.request_id"] == request_id
    assert api.service == "lambdastack"
    assert fn.parent_id == api.span_id
    assert fn.span_id == parent  # the function's own spans descend from the platform's
    assert fn.attributes["faas.invocation_id"] == request_id
    assert fn.attributes["aws.request_id"] == request_id
    assert fn.attributes["faas.coldstart"] is True
    assert fn.attributes["faas.name"] == name and fn.attributes["faas.version"] == "$LATEST"
    assert children(spans, fn) == {"Admission", "Initialization", "Invocation"}
    assert api.start_ns <= fn.start_ns <= spans["Initialization"].start_ns
    assert spans["Initialization"].end_ns <= spans["Invocation"].start_ns <= spans["Invocation"].end_ns <= fn.end_ns
    assert fn.end_ns <= api.end_ns

    warm, warm_request = seen(lam, name)
    assert warm.group(1) != root  # each invocation its own trace
    again = receiver.wait_trace(trace_id_of(warm.group(1)), {"Lambda/Invoke", name, "Admission", "Invocation"})
    assert again[name].attributes["faas.coldstart"] is False
    assert "Initialization" not in again
    assert again[name].attributes["faas.invocation_id"] == warm_request


def test_function_error_marks_the_spans(lam: Any, receiver: OtlpReceiver) -> None:
    name = create_function(lam, "def handler(event, context):\n    raise ValueError('no')\n",
                           TracingConfig={"Mode": "Active"})
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    assert r["FunctionError"] == "Unhandled"
    request_id = r["ResponseMetadata"]["RequestId"]
    fn = wait_for(lambda: next((s for s in receiver.spans if s.name == name), None))
    spans = receiver.wait_trace(fn.trace_id, {"Invocation", name})
    assert spans[name].status == 2 and spans["Invocation"].status == 2
    assert spans["Invocation"].attributes["error.type"] == "ValueError"
    assert spans[name].attributes["aws.request_id"] == request_id


def test_incoming_xray_header_joins_its_trace(srv: Server, receiver: OtlpReceiver) -> None:
    lam = srv.client()
    name = create_function(lam, SEES_TRACE)  # PassThrough: traced when the caller's header says Sampled=1
    root, caller_span = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}", os.urandom(8).hex()
    header, request_id = seen(with_headers(srv, {"X-Amzn-Trace-Id": f"Root={root};Parent={caller_span};Sampled=1"}),
                              name)
    assert header.group(1) == root and header.group(3) == "1"
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/Invoke", name, "Invocation"})
    assert spans["Lambda/Invoke"].parent_id == caller_span
    assert spans[name].span_id == header.group(2)
    assert spans[name].attributes["aws.request_id"] == request_id

    # Sampled=0 upstream: the same root reaches the function, and no span is recorded, even with Active.
    active = create_function(lam, SEES_TRACE, TracingConfig={"Mode": "Active"})
    quiet = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    header, _ = seen(with_headers(srv, {"X-Amzn-Trace-Id": f"Root={quiet};Parent={caller_span};Sampled=0"}), active)
    assert header.group(1) == quiet and header.group(3) == "0"
    # No header and PassThrough: a root of its own, not sampled.
    header, _ = seen(lam, name)
    unsampled = header.group(1)
    assert header.group(3) == "0"
    # Spans are exported in the order they end: once a later trace arrived, these would have.
    later, _ = seen(lam, active)
    receiver.wait_trace(trace_id_of(later.group(1)), {active})
    assert receiver.trace(trace_id_of(quiet)) == [] and receiver.trace(trace_id_of(unsampled)) == []


def test_incoming_traceparent_joins_its_trace(srv: Server, receiver: OtlpReceiver) -> None:
    lam = srv.client()
    name = create_function(lam, SEES_TRACE)
    trace_id, span_id = f"{int(time.time()):08x}{os.urandom(12).hex()}", os.urandom(8).hex()
    header, _ = seen(with_headers(srv, {"traceparent": f"00-{trace_id}-{span_id}-01"}), name)
    assert header.group(1) == f"1-{trace_id[:8]}-{trace_id[8:]}" and header.group(3) == "1"
    spans = receiver.wait_trace(trace_id, {"Lambda/Invoke", name})
    assert spans["Lambda/Invoke"].parent_id == span_id
    assert spans[name].parent_id == spans["Lambda/Invoke"].span_id


def test_async_invocation_queue_and_destination(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    sink = create_function(lam, SEES_TRACE)
    sink_arn = lam.get_function(FunctionName=sink)["Configuration"]["FunctionArn"]
    name = create_function(lam, SEES_TRACE, TracingConfig={"Mode": "Active"})
    lam.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": sink_arn}})
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    caller = with_headers(srv, {"X-Amzn-Trace-Id": f"Root={root};Sampled=1"})
    r = caller.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert r["StatusCode"] == 202
    request_id = r["ResponseMetadata"]["RequestId"]
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/Invoke", "Queue", name, "Invocation", "Destination"})
    api = spans["Lambda/Invoke"]
    assert api.parent_id == "" and api.attributes["aws.lambda.invocation_type"] == "Event"
    assert api.attributes["http.response.status_code"] == 202
    assert {spans["Queue"].parent_id, spans[name].parent_id, spans["Destination"].parent_id} == {api.span_id}
    assert spans[name].attributes["faas.invocation_id"] == request_id
    assert spans["Queue"].start_ns <= spans["Queue"].end_ns <= spans[name].start_ns
    assert spans["Destination"].attributes["aws.lambda.destination"] == sink_arn
    assert spans["Destination"].start_ns >= spans[name].end_ns


def test_nodejs_function_sees_the_trace(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    runtimes = requests.get(srv.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    runtime = next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)
    if runtime is None:
        pytest.skip("no Node.js on this host")
    name = create_function(lam, files={"index.js": NODE_SEES_TRACE}, handler="index.handler", runtime=runtime)
    root, caller_span = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}", os.urandom(8).hex()
    header, request_id = seen(with_headers(srv, {"X-Amzn-Trace-Id": f"Root={root};Parent={caller_span};Sampled=1"}),
                              name)
    assert header.group(1) == root
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/Invoke", name})
    assert spans[name].span_id == header.group(2)
    assert spans[name].attributes["faas.invocation_id"] == request_id


def test_tracing_off_still_gives_each_invocation_a_trace(lam: Any, server: Server) -> None:
    """The suite's shared server exports nothing; functions still get Lambda's trace header."""
    plain = server.client()
    name = create_function(plain, SEES_TRACE, TracingConfig={"Mode": "Active"})
    first, _ = seen(plain, name)
    second, _ = seen(plain, name)
    assert first.group(1) != second.group(1)
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    header, _ = seen(with_headers(server, {"X-Amzn-Trace-Id": f"Root={root};Sampled=0"}), name)
    assert header.group(1) == root and header.group(3) == "0"
    # A header that names no valid root is ignored, as AWS ignores it: a trace of its own.
    header, _ = seen(with_headers(server, {"X-Amzn-Trace-Id": "Root=not-a-root;Sampled=1",
                                           "traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}),
                     name)
    assert header.group(1) not in (root, first.group(1), second.group(1))
    assert json.loads(requests.get(server.url + "/_lambdastack/health", timeout=5).text)["status"] == "ok"


URL_SEES_TRACE = """
import json, os

def handler(event, context):
    return {"statusCode": 200, "body": json.dumps({"trace": os.environ.get("_X_AMZN_TRACE_ID"),
                                                    "request_id": context.aws_request_id})}
"""


def test_function_url_request_joins_the_callers_trace(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    name = create_function(lam, URL_SEES_TRACE)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    host = url.split("//", 1)[1].split(":", 1)[0]
    trace_id, span_id = f"{int(time.time()):08x}{os.urandom(12).hex()}", os.urandom(8).hex()
    r = requests.get(srv.url + "/", headers={"Host": host, "traceparent": f"00-{trace_id}-{span_id}-01"},
                     timeout=30)
    assert r.status_code == 200, r.text
    header = HEADER.fullmatch(r.json()["trace"])
    assert header and header.group(1) == f"1-{trace_id[:8]}-{trace_id[8:]}" and header.group(3) == "1"
    spans = receiver.wait_trace(trace_id, {"Lambda/Invoke", name, "Invocation"})
    assert spans["Lambda/Invoke"].parent_id == span_id
    assert spans[name].span_id == header.group(2)
    assert spans[name].attributes["faas.invocation_id"] == r.json()["request_id"]


def test_active_samples_as_xray_default_rule(server: Server) -> None:
    """Active without a caller's decision: the first request of each second, and 5 % of the rest."""
    lam = server.client()
    name = create_function(lam, SEES_TRACE, TracingConfig={"Mode": "Active"})
    decisions: list[str] = []
    start = time.monotonic()
    while time.monotonic() - start < 1.2 or len(decisions) < 40:  # across a second's boundary at least once
        decisions.append(seen(lam, name)[0].group(3))
    assert "1" in decisions  # the reservoir of a new second
    assert decisions.count("0") > len(decisions) // 2, decisions


def test_response_stream_invocation_joins_the_callers_trace(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    name = create_function(lam, SEES_TRACE)
    root, caller_span = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}", os.urandom(8).hex()
    caller = with_headers(srv, {"X-Amzn-Trace-Id": f"Root={root};Parent={caller_span};Sampled=1"})
    r = caller.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    body = b"".join(e["PayloadChunk"]["Payload"] for e in r["EventStream"] if "PayloadChunk" in e)
    header = HEADER.fullmatch(json.loads(body)["trace"])
    assert header and header.group(1) == root and header.group(3) == "1"
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/InvokeWithResponseStream", name, "Admission",
                                                    "Invocation"})
    api = spans["Lambda/InvokeWithResponseStream"]
    assert api.parent_id == caller_span and api.attributes["rpc.method"] == "InvokeWithResponseStream"
    assert spans[name].parent_id == api.span_id and spans[name].span_id == header.group(2)
    assert api.end_ns >= spans[name].end_ns


OWN_SPANS = """
import os

from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.trace import TracerProvider

tracer = TracerProvider().get_tracer("function")


def handler(event, context):
    carrier = {"X-Amzn-Trace-Id": os.environ["_X_AMZN_TRACE_ID"]}
    with tracer.start_as_current_span("work", context=AwsXRayPropagator().extract(carrier)) as span:
        return {"trace_id": f"{span.get_span_context().trace_id:032x}", "parent": f"{span.parent.span_id:016x}",
                "sampled": span.get_span_context().trace_flags.sampled,
                "otel": sorted(k for k in os.environ if k.startswith("OTEL_"))}
"""


def test_functions_own_spans_join_the_trace(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    """A function with the OpenTelemetry SDK and the X-Ray propagator (as ADOT's layer sets up)."""
    files = {"app.py": OWN_SPANS, **distribution_files("opentelemetry-sdk", "opentelemetry-propagator-aws-xray")}
    name = create_function(lam, files=files, TracingConfig={"Mode": "Active"}, Timeout=30)
    r = invoke(lam, name, {})
    assert r.function_error is None, (r.payload[:2000], r.log)
    own = r.result
    spans = receiver.wait_trace(own["trace_id"], {"Lambda/Invoke", name, "Invocation"})
    assert own["parent"] == spans[name].span_id and own["sampled"] is True
    assert spans[name].attributes["faas.invocation_id"] == r.request_id
    assert own["otel"] == []  # the server's exporter settings are its own, not the function's


def test_a_throttled_invocation_is_traced_as_refused(srv: Server, lam: Any, receiver: OtlpReceiver) -> None:
    name = create_function(lam, SEES_TRACE)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    caller = with_headers(srv, {"X-Amzn-Trace-Id": f"Root={root};Sampled=1"})
    with pytest.raises(caller.exceptions.TooManyRequestsException):
        caller.invoke(FunctionName=name, Payload=b"{}")
    spans = receiver.wait_trace(trace_id_of(root), {"Lambda/Invoke", name, "Admission"})
    assert spans["Admission"].status == 2 and spans[name].status == 2 and spans["Lambda/Invoke"].status == 2
    assert "Invocation" not in spans and "faas.coldstart" not in spans[name].attributes
