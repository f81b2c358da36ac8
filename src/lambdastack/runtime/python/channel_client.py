"""The built-in runtime's events straight from the worker: frames on a socket, no HTTP, no relay.

An environment of the built-in Python runtime with no external extension has nothing that
needs the Runtime API's HTTP between the worker and the runtime: its init would only relay
each event and each result, one process hop (two wake-ups) per invocation. Such a runtime
gets a socket of its own to the worker at spawn and speaks the init's frames on it: READY
at its first `next`, INVOKE in, RESPONSE / ERROR / INIT_ERROR out, with the meta the init
writes (but no durations: the worker measures those itself, as the function must not report
what it is billed). The init still serves the Runtime API (for anything else in the environment)
and still reports the runtime's exit. The same methods as `RuntimeClient`, so the invoker
does not know which one it has.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Dict, List, Optional

from lambdastack.runtime import protocol

from .client import Invocation, RuntimeApiError

_RECV_SIZE = 64 * 1024


class ChannelClient(object):
    def __init__(self, sock: socket.socket, address: str) -> None:
        self.address = address  # the Runtime API the init serves (for messages)
        self._sock = sock
        self._frames = protocol.FrameReader()
        self._waiting: List[protocol.Frame] = []  # read along with an earlier one
        self._ready_sent = False

    # ---------------------------------------------------------------- endpoints

    def next(self) -> Invocation:
        if not self._ready_sent:
            self._ready_sent = True
            self._send(protocol.READY, {"extensions": 0, "runtime_pid": os.getpid()})
        return self._receive()

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        if len(body) > protocol.MAX_RESPONSE_BYTES:
            self._too_large(request_id, len(body))
        self._send(protocol.RESPONSE, {"request_id": request_id, "content_type": content_type}, body)

    def respond_and_next(self, request_id: str, body: bytes, content_type: str) -> Invocation:
        self.post_response(request_id, body, content_type)
        return self._receive()

    def post_error(self, request_id: str, body: bytes, error_type: str, xray_cause: Optional[str]) -> None:
        self._send(protocol.ERROR, {"request_id": request_id, "error_type": error_type or "Runtime.Unknown"}, body)

    def post_init_error(self, body: bytes, error_type: str) -> None:
        self._send(protocol.INIT_ERROR, {"error_type": error_type or "Runtime.Unknown"}, body)

    def close(self) -> None:
        self._sock.close()

    # ---------------------------------------------------------------- frames

    def _too_large(self, request_id: str, size: int) -> None:
        """As the init answers an oversized result: the invocation fails, the runtime is told 413."""
        self._send(protocol.ERROR, {
            "request_id": request_id, "error_type": "Function.ResponseSizeTooLarge",
        }, json.dumps({"errorMessage": protocol.too_large_message(size),
                       "errorType": "Function.ResponseSizeTooLarge"}).encode())
        raise RuntimeApiError("Failed to post invocation response. Http response code: 413. %s"
                              % json.dumps(protocol.refusal_of_too_large()))

    def _send(self, kind: int, meta: Dict[str, Any], body: bytes = b"") -> None:
        try:
            self._sock.sendall(protocol.encode(kind, meta, body))
        except OSError as e:
            raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))

    def _receive(self) -> Invocation:
        while True:
            while self._waiting:
                kind, meta, body = self._waiting.pop(0)
                if kind == protocol.INVOKE:
                    return _invocation(meta, body)
            self._waiting = self._frames.feed(self._read())

    def _read(self) -> bytes:
        try:
            data = self._sock.recv(_RECV_SIZE)
        except OSError as e:
            raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))
        if not data:
            raise RuntimeApiError("Runtime API at %s closed the connection" % self.address)
        return data


def _invocation(meta: Dict[str, Any], body: bytes) -> Invocation:
    """What the init would have put in the headers of `next`, read from the frame's meta."""
    inv = Invocation.__new__(Invocation)
    inv.request_id = meta["request_id"]
    inv.invoked_function_arn = meta.get("invoked_arn") or ""
    inv.trace_id = meta.get("trace_id") or None
    inv.client_context = meta.get("client_context") or None
    inv.cognito_identity = meta.get("cognito_identity") or None
    inv.tenant_id = meta.get("tenant_id") or None
    inv.content_type = meta.get("content_type") or "application/json"
    inv.deadline_ms = int(meta.get("deadline_ms") or 0)
    inv.body = body
    return inv
