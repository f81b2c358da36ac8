"""The Node.js runtime: handlers as Lambda's Node.js runtime loads and calls them, its context
object, its error bodies and its log format, through boto3 against a real server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
from helpers import ROLE, Server, cpu_load, create_function, invoke, make_zip, stored_log, unique, wait_for

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    return plain_lam


@pytest.fixture(scope="module")
def runtime(server: Server) -> str:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    found = next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)
    if found is None:
        pytest.skip("no Node.js on this host")
    return found


def node_function(lam: Any, runtime: str, files: dict[str, str | bytes], handler: str = "index.handler",
                  **config: Any) -> str:
    return create_function(lam, files=files, handler=handler, runtime=runtime, **config)


def ok(lam: Any, name: str, event: Any = None, **params: Any) -> Any:
    r = invoke(lam, name, event if event is not None else {}, **params)
    assert r.function_error is None, (r.payload[:2000], r.log)
    return r.result


def body_lines(log: str, request_id: str) -> list[str]:
    lines = log.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"START RequestId: {request_id}"))
    return lines[start + 1:lines.index(f"END RequestId: {request_id}")]


# ------------------------------------------------------------------------------ handler styles


def test_commonjs_esm_and_type_module(lam: Any, runtime: str) -> None:
    source = "async (event) => ({ kind: KIND, event })"
    cases = {
        "commonjs": ({"index.js": f"const KIND = 'cjs'; exports.handler = {source};"}, "cjs"),
        "mjs": ({"index.mjs": f"const KIND = 'mjs'; export const handler = {source};"}, "mjs"),
        "type-module": ({"index.js": f"const KIND = 'js-esm'; export const handler = {source};",
                         "package.json": '{"type": "module"}'}, "js-esm"),
        "cjs-extension": ({"index.cjs": f"const KIND = 'cjs-ext'; module.exports.handler = {source};"}, "cjs-ext"),
    }
    for files, kind in cases.values():
        name = node_function(lam, runtime, files)
        assert ok(lam, name, {"n": 1}) == {"kind": kind, "event": {"n": 1}}


def test_handler_in_a_folder_and_nested_export(lam: Any, runtime: str) -> None:
    files = {"src/handlers/api.js": "exports.routes = { get: async (e) => 'nested:' + e.x };"}
    name = node_function(lam, runtime, files, handler="src/handlers/api.routes.get")
    assert ok(lam, name, {"x": "y"}) == "nested:y"


def test_modules_from_node_modules_and_node_path(lam: Any, runtime: str) -> None:
    files = {
        "index.js": "const lib = require('greeter'); exports.handler = async () => lib.greet('node');",
        "node_modules/greeter/package.json": '{"name": "greeter", "main": "main.js"}',
        "node_modules/greeter/main.js": "exports.greet = (who) => `hello ${who}`;",
    }
    name = node_function(lam, runtime, files)
    assert ok(lam, name) == "hello node"


def test_callback_style(lam: Any, runtime: str) -> None:
    source = """
exports.handler = function (event, context, callback) {
  if (event.fail) return callback(new Error('callback failure'));
  setTimeout(() => { globalThis.late = 'timer ran'; }, 50);
  callback(null, { waited: event.waited });
};
exports.after = function (event, context, callback) { callback(null, globalThis.late || 'no timer'); };
"""
    name = node_function(lam, runtime, {"index.js": source})
    # callbackWaitsForEmptyEventLoop (default true): the answer waits for the timer.
    assert ok(lam, name, {"waited": True}) == {"waited": True}
    r = invoke(lam, name, {"fail": True})
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Error" and r.result["errorMessage"] == "callback failure"


def test_callback_without_waiting_for_the_event_loop(lam: Any, runtime: str) -> None:
    source = """
let runs = 0;
exports.handler = function (event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = false;
  runs += 1;
  const run = runs;
  setTimeout(() => { globalThis.finished = run; }, 300);
  callback(null, { run, finishedBefore: globalThis.finished ?? null, waits: context.callbackWaitsForEmptyEventLoop });
};
"""
    name = node_function(lam, runtime, {"index.js": source})
    first = ok(lam, name)
    assert first == {"run": 1, "finishedBefore": None, "waits": False}  # answered before its timer fired
    second = ok(lam, name)
    assert second["run"] == 2  # the same, warm environment


def test_plain_function_answers_null_and_never_settled_promise_fails(lam: Any, runtime: str) -> None:
    source = """
exports.plain = (event) => 'ignored: not async, no callback';
exports.forever = async () => new Promise(() => {});
"""
    plain = node_function(lam, runtime, {"index.js": source}, handler="index.plain")
    assert ok(lam, plain) is None
    forever = node_function(lam, runtime, {"index.js": source}, handler="index.forever")
    r = invoke(lam, forever)
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Runtime.NodeJsExit"
    assert "Promise that was never settled" in r.result["errorMessage"]


def test_legacy_context_done_succeed_fail(lam: Any, runtime: str) -> None:
    source = """
exports.handler = function (event, context) {
  if (event.how === 'succeed') context.succeed({ via: 'succeed' });
  else if (event.how === 'done') context.done(null, { via: 'done' });
  else if (event.how === 'fail') context.fail(new TypeError('failed via fail'));
  else if (event.how === 'fail-empty') context.fail();
  context.succeed('second call is ignored');
};
"""
    name = node_function(lam, runtime, {"index.js": source})
    assert ok(lam, name, {"how": "succeed"}) == {"via": "succeed"}
    assert ok(lam, name, {"how": "done"}) == {"via": "done"}
    r = invoke(lam, name, {"how": "fail"})
    assert (r.result["errorType"], r.result["errorMessage"]) == ("TypeError", "failed via fail")
    r = invoke(lam, name, {"how": "fail-empty"})
    assert r.result == {"errorType": "string", "errorMessage": "handled", "trace": []}


# ------------------------------------------------------------------------------ context


def test_context_object(lam: Any, runtime: str) -> None:
    source = """
exports.handler = async (event, context) => ({
  keys: Object.keys(context),
  functionName: context.functionName, functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn, memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId, logGroupName: context.logGroupName, logStreamName: context.logStreamName,
  identity: context.identity ?? null, clientContext: context.clientContext ?? null,
  remaining: context.getRemainingTimeInMillis(), waits: context.callbackWaitsForEmptyEventLoop,
  legacy: [typeof context.done, typeof context.succeed, typeof context.fail],
});
"""
    name = node_function(lam, runtime, {"index.js": source}, MemorySize=512, Timeout=7)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    r = invoke(lam, name, {})
    c = r.result
    assert c["keys"] == [
        "callbackWaitsForEmptyEventLoop", "succeed", "fail", "done", "functionVersion", "functionName",
        "memoryLimitInMB", "logGroupName", "logStreamName", "clientContext", "identity", "invokedFunctionArn",
        "awsRequestId", "tenantId", "getRemainingTimeInMillis",
    ]
    assert (c["functionName"], c["functionVersion"], c["invokedFunctionArn"]) == (name, "$LATEST", arn)
    assert c["memoryLimitInMB"] == "512"  # a string, as on Lambda
    assert c["awsRequestId"] == r.request_id
    assert c["logGroupName"] == f"/aws/lambda/{name}"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", c["logStreamName"])
    assert (c["identity"], c["clientContext"]) == (None, None)
    assert 6000 < c["remaining"] <= 7000
    assert c["waits"] is True
    assert c["legacy"] == ["function", "function", "function"]


# ------------------------------------------------------------------------------ errors


def test_error_body_and_log(lam: Any, runtime: str) -> None:
    source = """
class ValidationError extends Error {
  constructor(message) { super(message); this.name = 'ValidationError'; this.field = 'email'; }
}
exports.handler = async (event) => {
  if (event.kind === 'custom') throw new ValidationError('bad email');
  if (event.kind === 'string') throw 'just a string';
  throw new Error('boom');
};
"""
    name = node_function(lam, runtime, {"index.js": source})
    r = invoke(lam, name, {"kind": "error"}, LogType="Tail")
    assert r.function_error == "Unhandled"
    assert list(r.result) == ["errorType", "errorMessage", "trace"]
    assert (r.result["errorType"], r.result["errorMessage"]) == ("Error", "boom")
    assert r.result["trace"][0] == "Error: boom"
    assert re.match(r"    at (Runtime\.)?(exports\.)?handler \(/var/task/index\.js:\d+:\d+\)", r.result["trace"][1])
    [line] = body_lines(r.log, r.request_id)
    stamp, rid, level, message = line.split("\t", 3)
    assert re.fullmatch(ISO, stamp) and (rid, level) == (r.request_id, "ERROR")
    assert message.startswith("Invoke Error \t")
    logged = json.loads(message[len("Invoke Error \t"):].replace("\r", "\n"))
    assert (logged["errorType"], logged["errorMessage"]) == ("Error", "boom")
    assert logged["stack"][0] == "Error: boom"

    r = invoke(lam, name, {"kind": "custom"})
    assert (r.result["errorType"], r.result["errorMessage"]) == ("ValidationError", "bad email")
    r = invoke(lam, name, {"kind": "string"})
    assert r.result == {"errorType": "string", "errorMessage": "just a string", "trace": []}


@pytest.mark.parametrize(
    ("files", "handler", "error_type", "message"),
    [
        ({"other.js": "exports.handler = async () => 1;"}, "index.handler", "Runtime.ImportModuleError",
         "Error: Cannot find module 'index'\nRequire stack:\n- /var/runtime/index.mjs"),
        ({"index.js": "exports.other = async () => 1;"}, "index.handler", "Runtime.HandlerNotFound",
         "index.handler is undefined or not exported"),
        ({"index.js": "exports.handler = 42;"}, "index.handler", "Runtime.HandlerNotFound",
         "index.handler is not a function"),
        ({"index.js": "exports.handler = async () => { return 1 +; };"}, "index.handler", "Runtime.UserCodeSyntaxError",
         "SyntaxError: Unexpected token ';'"),
        ({"index.js": "exports.handler = async () => 1;"}, "indexhandler", "Runtime.MalformedHandlerName",
         "Bad handler"),
        ({"index.js": "exports.handler = async () => 1;"}, "../index.handler", "Runtime.MalformedHandlerName",
         "'../index.handler' is not a valid handler name. Use absolute paths when specifying root directories "
         "in handler names."),
        ({"index.js": "throw new RangeError('bad config');"}, "index.handler", "RangeError", "bad config"),
    ],
    ids=["import", "missing-export", "not-a-function", "syntax", "malformed", "relative", "throws-at-init"],
)
def test_init_errors(lam: Any, runtime: str, server: Server, files: dict[str, str], handler: str,
                     error_type: str, message: str) -> None:
    name = node_function(lam, runtime, files, handler=handler)
    r = invoke(lam, name, {}, LogType="Tail")
    assert r.function_error == "Unhandled"
    assert list(r.result) == ["errorType", "errorMessage", "trace"]
    assert (r.result["errorType"], r.result["errorMessage"]) == (error_type, message)
    assert r.result["trace"][0].startswith(f"{error_type}: ")
    # The init failed twice (the second time within the invocation), logging it each time.
    assert re.search(rf"INIT_REPORT Init Duration: [\d.]+ ms\tPhase: invoke\tStatus: error\tError Type: "
                     rf"{re.escape(error_type)}", r.log), r.log
    assert re.search(rf"{ISO}\tundefined\tERROR\tUncaught Exception \t\{{\"errorType\":\"{re.escape(error_type)}\"",
                     r.log), r.log
    logs = wait_for(lambda: [s for s in stored_log(server, lam, name).values()
                             if any("Phase: init\tStatus: error" in line for line in s)])
    assert logs, stored_log(server, lam, name)


def test_uncaught_exception_and_unhandled_rejection_replace_the_environment(lam: Any, runtime: str) -> None:
    source = """
let invocations = 0;
exports.handler = async (event) => {
  invocations += 1;
  if (event.crash === 'timer') setTimeout(() => { throw new Error('from a timer'); }, 0);
  if (event.crash === 'rejection') Promise.reject(new Error('nobody listens'));
  if (event.crash) await new Promise((resolve) => setTimeout(resolve, 1000));
  return invocations;
};
"""
    name = node_function(lam, runtime, {"index.js": source})

    def fresh_environment() -> bool:
        r = invoke(lam, name, {})
        return r.function_error is None and r.result == 1

    for crash, error in (("timer", ("Error", "from a timer")),
                         ("rejection", ("Runtime.UnhandledPromiseRejection", "Error: nobody listens"))):
        assert wait_for(fresh_environment)
        r = invoke(lam, name, {"crash": crash})
        assert r.function_error == "Unhandled"
        assert (r.result["errorType"], r.result["errorMessage"]) == error
    # The runtime reported the error, then exited: a new environment serves what follows.
    assert wait_for(fresh_environment)


def test_invocation_right_after_a_crash_gets_a_fresh_environment(lam: Any, runtime: str) -> None:
    """The environment takes the next event as soon as its runtime answered; a runtime that then
    exits without asking for it never saw it, and the event goes to a new environment.

    The runtime's exit and the next event cross on the way (the exit reported before the event
    arrives, the event sent before the report is read) only now and then: many rounds, with
    every core busy, make that happen within the test."""
    source = """
exports.handler = async (event) => {
  if (event.crash) setTimeout(() => { throw new Error('crash'); }, 0);
  if (event.crash) await new Promise((resolve) => setTimeout(resolve, 1000));
  return 'fine';
};
"""
    name = node_function(lam, runtime, {"index.js": source})
    with cpu_load():
        for _ in range(50):
            assert invoke(lam, name, {"crash": True}).function_error == "Unhandled"
            r = invoke(lam, name, {})
            assert r.function_error is None, r.payload


def test_result_that_cannot_be_serialized(lam: Any, runtime: str) -> None:
    source = "exports.handler = async () => { const a = {}; a.self = a; return a; };"
    name = node_function(lam, runtime, {"index.js": source})
    r = invoke(lam, name)
    assert (r.result["errorType"], r.result["errorMessage"]) == ("Error", "Unable to stringify response body")


# ------------------------------------------------------------------------------ logs


def test_console_methods_and_text_format(lam: Any, runtime: str, server: Server) -> None:
    source = """
console.log('at init');
exports.handler = async () => {
  console.log('log %s', 'formatted', { a: 1 });
  console.info('info');
  console.warn('warn');
  console.error('error');
  console.debug('debug');
  console.trace('trace');
  console.log('two\\nlines');
  console.log();
  process.stdout.write('raw write\\n');
  return 'done';
};
"""
    name = node_function(lam, runtime, {"index.js": source})
    r = invoke(lam, name, {}, LogType="Tail")
    # Init output is in the stream, before the invocation's START.
    [stream] = stored_log(server, lam, name).values()
    assert re.fullmatch(rf"{ISO}\tundefined\tINFO\tat init", stream[0]), stream
    assert stream[1].startswith(f"START RequestId: {r.request_id}")
    rest = body_lines(r.log, r.request_id)
    parsed = [line.split("\t", 3) for line in rest if line != "raw write"]
    assert all(re.fullmatch(ISO, p[0]) and p[1] == r.request_id for p in parsed), rest
    assert [(p[2], p[3]) for p in parsed] == [
        ("INFO", "log formatted { a: 1 }"), ("INFO", "info"), ("WARN", "warn"), ("ERROR", "error"),
        ("DEBUG", "debug"), ("TRACE", "trace"), ("INFO", "two\rlines"), ("INFO", "undefined"),
    ]
    assert rest[-1] == "raw write"


def test_json_log_format_and_level(lam: Any, runtime: str) -> None:
    source = """
exports.handler = async () => {
  console.debug('hidden');
  console.info('shown', 42);
  console.warn({ structured: true });
  console.error(new Error('logged error'));
  return 'ok';
};
"""
    name = node_function(lam, runtime, {"index.js": source},
                         LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"})
    r = invoke(lam, name, {}, LogType="Tail")
    records = [json.loads(line) for line in r.log.split("\n") if line.startswith('{"timestamp"')]
    assert [(x["level"], x["requestId"]) for x in records] == [("INFO", r.request_id)] * 1 + [
        ("WARN", r.request_id), ("ERROR", r.request_id)]
    assert records[0]["message"] == "shown 42"
    assert records[1]["message"] == {"structured": True}
    error = records[2]["message"]
    assert (error["errorType"], error["errorMessage"]) == ("Error", "logged error")
    assert error["stackTrace"][0] == "Error: logged error"
    assert all(re.fullmatch(ISO, x["timestamp"]) for x in records)


# ------------------------------------------------------------------------------ environment


def test_environment_and_heap_sized_to_memory(lam: Any, runtime: str) -> None:
    source = """
const v8 = require('v8');
exports.handler = async () => ({
  execEnv: process.env.AWS_EXECUTION_ENV, nodePath: process.env.NODE_PATH, execPath: process.execPath,
  version: process.version, heapLimitMb: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
  gc: typeof globalThis.gc, awslambda: typeof globalThis.awslambda?.streamifyResponse,
  runtimeDir: require('fs').readdirSync('/var/runtime').includes('index.mjs'),
});
"""
    name = node_function(lam, runtime, {"index.js": source}, MemorySize=1024)
    info = ok(lam, name)
    major = runtime[len("nodejs"):-len(".x")]
    assert info["execEnv"] == f"AWS_Lambda_{runtime}"
    assert info["nodePath"].startswith(f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:")
    assert info["execPath"] == "/var/lang/bin/node"
    assert info["version"].startswith(f"v{major}.")
    assert 900 <= info["heapLimitMb"] <= 1200  # old space = 90% of the function's memory, plus new space
    assert (info["gc"], info["awslambda"], info["runtimeDir"]) == ("function", "function", True)


def test_exec_wrapper(lam: Any, runtime: str) -> None:
    wrapper = '#!/bin/sh\nexport WRAPPED="by $(basename $0) with $#"\nexec "$@"\n'
    files: dict[str, str | bytes] = {
        "index.js": "exports.handler = async () => process.env.WRAPPED;", "wrapper": wrapper}
    name = unique()
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler="index.handler",
                        Code={"ZipFile": make_zip(files, modes={"wrapper": 0o755})},
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper"}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert ok(lam, name).startswith("by wrapper with ")
