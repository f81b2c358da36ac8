"""A rehearsal of the runtime's first invocation, in an environment built ahead of its function.

A forked process pays for the first run of every code path: each page of the zygote's heap
it writes to (reference counts, the interpreter's inline caches) is copied on that first
write. An environment built ahead of demand has time to spare before its function is
known, so its runtime process runs the steps of `bootstrap.main` and of one invocation on
stand-ins first (a no-op handler, a canned Runtime API exchange over a socket pair, and the
same over frames, as a runtime with a socket of its own to the worker takes its events) and
takes those copies then, instead of during a cold start.

The rehearsal leaves no state that the real start-up reads: no environment variable, no
entry in sys.path or sys.modules, no file, no logging configuration, no socket.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from typing import Any, Dict

from lambdastack.runtime import protocol

from . import bootstrap, logs
from .channel_client import ChannelClient
from .client import RuntimeClient
from .config import RuntimeConfig
from .invoke import Invoker
from .marshalling import JsonEncoder

_ENVIRON = {
    "_HANDLER": "app.handler",
    "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
}
_EVENT_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Lambda-Runtime-Aws-Request-Id: 00000000-0000-0000-0000-000000000000\r\n"
    b"Lambda-Runtime-Deadline-Ms: 1900000000000\r\n"
    b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f\r\n"
    b"Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)
_EVENT_FRAME = protocol.encode(protocol.INVOKE, {
    "request_id": "00000000-0000-0000-0000-000000000000", "deadline_ms": 1900000000000,
    "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
    "trace_id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
    "content_type": "application/json",
}, b"{}")
_ACCEPTED = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"status":"OK"}\n'
)


def _handler(event: Any, context: Any) -> Dict[str, Any]:
    context.get_remaining_time_in_millis()
    return {"statusCode": 200, "body": "ok"}


def _import_a_module() -> None:
    """Import a stand-in handler module from a file, through the whole import system."""
    folder = "/tmp/.lambdastack-rehearsal-%d" % os.getpid()  # the environment's own /tmp
    name = "_lambdastack_rehearsal"
    source = os.path.join(folder, name + ".py")
    os.mkdir(folder, 0o700)
    try:
        with open(source, "w") as f:
            f.write("import json\n\ndef handler(event, context):\n    return json.dumps(event)\n")
        sys.path.insert(0, folder)
        try:
            importlib.import_module(name)
        finally:
            sys.path.remove(folder)
            sys.path_importer_cache.pop(folder, None)
            sys.modules.pop(name, None)
    finally:
        _remove_tree(folder)


def _remove_tree(folder: str) -> None:
    for parent, folders, files in os.walk(folder, topdown=False):
        for entry in files:
            os.unlink(os.path.join(parent, entry))
        for entry in folders:
            os.rmdir(os.path.join(parent, entry))
    os.rmdir(folder)


def rehearse() -> bool:
    """Run the start-up and one invocation on stand-ins; never raises. Whether all of it ran."""
    trace = os.environ.get("_X_AMZN_TRACE_ID")
    ours, theirs = socket.socketpair()
    ours.settimeout(1.0)
    try:
        config = RuntimeConfig(_ENVIRON)
        bootstrap.lambda_sys_path(config.task_root, config.runtime_dir, list(sys.path))
        _import_a_module()
        encoder = JsonEncoder(config.ensure_ascii)
        logs.make_error_logger(config.log_format, encoder.encode)
        client = RuntimeClient(config.api_address)
        client._sock = ours  # the exchange goes to our own socket pair, not to the Runtime API
        theirs.sendall(_EVENT_HEAD + _ACCEPTED + _EVENT_HEAD)
        invoker = Invoker(client, _handler, encoder, lambda error, sink: None, None)
        invoker.handle(client.next())
        _rehearse_channel(encoder)  # the way in of a runtime with a socket of its own
        return True
    except Exception:
        return False  # a rehearsal that fails costs only what it would have saved
    finally:
        ours.close()
        theirs.close()
        logs.CURRENT.request_id = None
        logs.CURRENT.tenant_id = None
        if trace is None:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        else:
            os.environ["_X_AMZN_TRACE_ID"] = trace


def _rehearse_channel(encoder: JsonEncoder) -> None:
    ours, theirs = socket.socketpair()
    ours.settimeout(1.0)  # a rehearsal that goes wrong must not hold the environment up
    try:
        theirs.sendall(_EVENT_FRAME + _EVENT_FRAME)
        client = ChannelClient(ours, _ENVIRON["AWS_LAMBDA_RUNTIME_API"])
        Invoker(client, _handler, encoder, lambda error, sink: None, None).handle(client.next())
    finally:
        ours.close()
        theirs.close()
