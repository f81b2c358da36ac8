"""Invoke through boto3 against the real server: results, the context object, environment
variables, handlers, and what `print` and `logging` leave in the log."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from helpers import DEFAULT_RUNTIME, create_function, invoke, invoke_ok


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


CONTEXT = '''
import json, os, time

def handler(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    second = context.get_remaining_time_in_millis()
    cc = context.client_context
    return {
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "remaining": [first, second],
        "remaining_type": type(first).__name__,
        "client_context": None if cc is None else {
            "client": None if cc.client is None else {
                "installation_id": cc.client.installation_id,
                "app_title": cc.client.app_title,
                "app_version_name": cc.client.app_version_name,
                "app_version_code": cc.client.app_version_code,
                "app_package_name": cc.client.app_package_name,
            },
            "custom": cc.custom,
            "env": cc.env,
        },
        "env_version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
    }
'''

ENVIRON = '''
import os

def handler(event, context):
    return {"environ": dict(os.environ), "cwd": os.getcwd()}
'''

STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[(\$LATEST|\d+)\][0-9a-f]{32}$")


@pytest.fixture(scope="module")
def context_fn(lam: Any) -> str:
    return create_function(lam, CONTEXT, MemorySize=256, Timeout=7)


def function_arn(lam: Any, name: str) -> str:
    return str(lam.get_function_configuration(FunctionName=name)["FunctionArn"])


# -- results -------------------------------------------------------------------------------


def test_json_round_trip_and_response_metadata(lam: Any, context_fn: str) -> None:
    event = {"a": [1, 2.5, {"b": None, "c": True}], "s": "text", "n": -7}
    r = invoke(lam, context_fn, event)
    assert (r.status, r.function_error, r.executed_version) == (200, None, "$LATEST")
    body = r.result
    assert body["event"] == event
    # The x-amzn-RequestId of the reply is the request id the function saw.
    assert r.request_id and body["aws_request_id"] == r.request_id


@pytest.mark.parametrize("raw, expected", [
    (b"42", 42), (b'"a string"', "a string"), (b"[1, 2, 3]", [1, 2, 3]), (b"null", None), (b"true", True),
])
def test_any_json_value_is_an_event(lam: Any, context_fn: str, raw: bytes, expected: Any) -> None:
    assert invoke_ok(lam, context_fn, raw=raw)["event"] == expected


def test_unicode_round_trip(lam: Any) -> None:
    name = create_function(lam, 'def handler(event, context):\n    return {"got": event, "made": "Grüße ✓ 日本 🚀"}\n')
    event = {"text": "héllo wörld ✓ 日本語 🚀", "ключ": "значение"}
    r = invoke(lam, name, event)
    assert r.result == {"got": event, "made": "Grüße ✓ 日本 🚀"}


def test_empty_payload_is_an_empty_object(lam: Any, context_fn: str) -> None:
    assert invoke_ok(lam, context_fn)["event"] == {}
    assert invoke_ok(lam, context_fn, raw=b"")["event"] == {}


def test_returning_none_gives_null(lam: Any) -> None:
    name = create_function(lam, "def handler(event, context):\n    return None\n")
    assert invoke(lam, name).payload == b"null"


def test_value_that_is_not_json_is_a_marshal_error(lam: Any) -> None:
    name = create_function(lam, "def handler(event, context):\n    return {1, 2}\n")
    r = invoke(lam, name)
    assert r.function_error == "Unhandled"
    assert r.result["errorType"] == "Runtime.MarshalError"
    assert r.result["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


# -- the context object ----------------------------------------------------------------------


def test_context_attributes(lam: Any, context_fn: str) -> None:
    r = invoke(lam, context_fn, {"k": 1})
    c = r.result
    assert c["aws_request_id"] == r.request_id
    assert c["function_name"] == context_fn
    assert c["function_version"] == "$LATEST" == c["env_version"]
    assert c["invoked_function_arn"] == function_arn(lam, context_fn)
    assert c["memory_limit_in_mb"] == "256"  # a string, as in Lambda's Python runtime
    assert c["log_group_name"] == f"/aws/lambda/{context_fn}"
    assert STREAM.match(c["log_stream_name"]), c["log_stream_name"]
    assert "[$LATEST]" in c["log_stream_name"]
    assert c["identity"] == [None, None]
    assert c["client_context"] is None


def test_remaining_time_counts_down_from_the_timeout(lam: Any, context_fn: str) -> None:
    c = invoke_ok(lam, context_fn)
    first, second = c["remaining"]
    assert c["remaining_type"] == "int"
    assert 5000 < first <= 7000
    assert 0 < second < first


def test_client_context_reaches_the_function(lam: Any, context_fn: str) -> None:
    client_context = {
        "client": {"installation_id": "inst-1", "app_title": "Shop", "app_version_name": "1.2",
                   "app_version_code": "12", "app_package_name": "com.example.shop"},
        "custom": {"basket": ["apple", "pear"]},
        "env": {"platform": "Android", "locale": "fr_FR"},
    }
    encoded = base64.b64encode(json.dumps(client_context).encode()).decode()
    c = invoke_ok(lam, context_fn, ClientContext=encoded)
    assert c["client_context"] == client_context


def test_version_and_alias_in_the_context(lam: Any, context_fn: str) -> None:
    version = lam.publish_version(FunctionName=context_fn)["Version"]
    lam.create_alias(FunctionName=context_fn, Name="live", FunctionVersion=version)
    r = invoke(lam, context_fn, Qualifier="live")
    assert r.executed_version == version
    c = r.result
    assert c["function_version"] == version == c["env_version"]
    assert c["invoked_function_arn"] == function_arn(lam, context_fn) + ":live"
    assert f"[{version}]" in c["log_stream_name"]
    r = invoke(lam, f"{context_fn}:{version}")
    assert r.executed_version == version
    assert r.result["invoked_function_arn"] == function_arn(lam, context_fn) + f":{version}"


# -- environment variables -------------------------------------------------------------------


def test_reserved_and_user_environment_variables(lam: Any) -> None:
    name = create_function(lam, ENVIRON, MemorySize=192,
                           Environment={"Variables": {"GREETING": "hello", "UNICODE": "ünïcødé", "EMPTY": ""}})
    r = invoke(lam, name)
    env = r.result["environ"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert STREAM.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["TZ"] == ":UTC"
    assert env["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:9001"
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{DEFAULT_RUNTIME}"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[key]
    assert (env["GREETING"], env["UNICODE"], env["EMPTY"]) == ("hello", "ünïcødé", "")
    assert r.result["cwd"] == "/var/task"


FIRST_LOOK = '''
import logging, os, sys

def handler(event, context):
    return {
        "environ": sorted(os.environ),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "tmp": os.listdir("/tmp"),
        "modules_from_outside_the_function": sorted(
            name for name, module in list(sys.modules.items())
            if (getattr(module, "__file__", None) or "").startswith(("/tmp", "/var/task"))
            and name != "app" and not name.startswith("lambdastack")  # the runtime's own (a checkout in /tmp)
        ),
        "sys_path": sys.path[:3],
        "root_log_handlers": len(logging.getLogger().handlers),
    }
'''

# What Lambda sets for a Python function (besides the function's own variables).
LAMBDA_VARIABLES = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT", "LANG", "LD_LIBRARY_PATH", "PATH", "PYTHONPATH", "TZ",
    # only where configured or traced
    "AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT",
    # lambdastack's: where the function's SDK reaches the Lambda API (see README, Network)
    "AWS_ENDPOINT_URL_LAMBDA", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
}


def test_a_new_environment_starts_clean(lam: Any) -> None:
    """The first invocation of new functions (served by environments built ahead of demand):
    nothing of what ran before the function was known is left for it to see."""
    for _ in range(4):
        name = create_function(lam, FIRST_LOOK, Environment={"Variables": {"MINE": "1"}})
        r = invoke(lam, name)
        seen = r.result
        assert set(seen["environ"]) - {"MINE"} <= LAMBDA_VARIABLES
        assert "MINE" in seen["environ"]
        assert seen["trace_id"] and seen["trace_id"].startswith("Root=1-")
        assert "00000000" not in seen["trace_id"].split(";")[0].split("-")[2]
        assert seen["tmp"] == []
        assert seen["modules_from_outside_the_function"] == []
        assert seen["sys_path"][0] == "/var/task"
        assert seen["root_log_handlers"] == 1


# -- handlers ----------------------------------------------------------------------------------


def test_handler_in_a_package_directory(lam: Any) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/helper.py": "WORD = 'from-helper'\n",
        "pkg/service.py": "from pkg.helper import WORD\n\ndef main(event, context):\n    return [__name__, WORD]\n",
    }
    name = create_function(lam, files=files, handler="pkg/service.main")
    assert invoke_ok(lam, name) == ["pkg.service", "from-helper"]


def test_dotted_module_path_and_sibling_imports(lam: Any) -> None:
    files = {
        "util.py": "def double(x):\n    return 2 * x\n",
        "pkg/__init__.py": "",
        "pkg/service.py": "from util import double\n\ndef main(event, context):\n    return double(event['x'])\n",
    }
    name = create_function(lam, files=files, handler="pkg.service.main")
    assert invoke_ok(lam, name, {"x": 21}) == 42


def test_module_may_be_named_anything(lam: Any) -> None:
    name = create_function(lam, files={"lambda_function.py": "def lambda_handler(e, c):\n    return 'ok'\n"},
                           handler="lambda_function.lambda_handler")
    assert invoke_ok(lam, name) == "ok"


def test_zip_with_binary_files_and_data(lam: Any) -> None:
    files: dict[str, str | bytes] = {
        "app.py": "import os\ndef handler(e, c):\n    return list(open(os.path.join(os.environ['LAMBDA_TASK_ROOT'],"
                  " 'data.bin'), 'rb').read())\n",
        "data.bin": bytes([0, 1, 2, 255]),
    }
    assert invoke_ok(lam, create_function(lam, files=files)) == [0, 1, 2, 255]


# -- output in the log -------------------------------------------------------------------------


def test_print_logging_and_context_log_go_to_the_log(lam: Any) -> None:
    source = (
        "import logging, sys\n"
        "logger = logging.getLogger()\n"
        "logger.setLevel(logging.INFO)\n"
        "def handler(event, context):\n"
        "    print('hello from print')\n"
        "    sys.stderr.write('to stderr\\n')\n"
        "    logger.info('an info record')\n"
        "    logging.getLogger('child').warning('a warning record')\n"
        "    context.log('via context.log\\n')\n"
        "    return 1\n"
    )
    name = create_function(lam, source)
    r = invoke(lam, name, LogType="Tail")
    rid = r.request_id
    lines = r.log.splitlines()
    assert "hello from print" in lines
    assert "to stderr" in lines
    assert "via context.log" in lines
    stamp = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
    assert any(re.fullmatch(rf"\[INFO\]\t{stamp}\t{rid}\tan info record", line) for line in lines), lines
    assert any(re.fullmatch(rf"\[WARNING\]\t{stamp}\t{rid}\ta warning record", line) for line in lines), lines
    # Order is kept: START, the output in order, END, REPORT.
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST"
    assert lines.index("hello from print") < lines.index("via context.log") < lines.index(f"END RequestId: {rid}")
    assert lines[-1].startswith(f"REPORT RequestId: {rid}\t")
