"""The init of an execution environment: PID 1, serving the Lambda Runtime API.

It sits between the worker (a stream socket carrying protocol frames) and the runtime (HTTP
on 127.0.0.1:9001, `AWS_LAMBDA_RUNTIME_API`). It holds no credentials and no privileges;
everything the runtime sends it is untrusted input. It measures what only it can see
precisely: when an event was handed to the runtime and when the answer came back.

Lifecycle: the runtime's first `GET .../invocation/next` means init is complete (READY);
each INVOKE frame answers the parked `next`; `.../response` and `.../error` become
RESPONSE and ERROR frames; the runtime's exit becomes EXITED.
"""

from __future__ import annotations

import errno
import json
import os
import selectors
import signal
import socket
import time
from typing import Any, Dict, Optional

from lambdastack.runtime import protocol
from lambdastack.runtime.httpserver import BadRequest, Connection, Request

MAX_RESPONSE_BYTES = 6_291_556  # Lambda's synchronous response limit
MAX_REQUEST_BODY = 8 * 1024 * 1024
PREFIX = "/2018-06-01/runtime/"


class Invocation:
    __slots__ = ("answered", "body", "delivered_ns", "failed", "meta", "request_id")

    def __init__(self, meta: Dict[str, Any], body: bytes) -> None:
        self.request_id: str = meta["request_id"]
        self.meta = meta
        self.body = body
        self.delivered_ns = 0
        self.answered = False
        self.failed = False


class Init:
    def __init__(self, channel: socket.socket, listener: socket.socket, runtime_pid: int) -> None:
        self.channel = channel
        self.listener = listener
        self.runtime_pid = runtime_pid
        self.selector = selectors.DefaultSelector()
        self.frames = protocol.FrameReader()
        self.channel_out = bytearray()
        self.conns: Dict[int, Connection] = {}
        self.parked: Optional[Connection] = None  # the runtime's pending `next`
        self.pending: Optional[Invocation] = None  # an event not yet delivered
        self.current: Optional[Invocation] = None  # the event the runtime is working on
        self.initialized = False
        self.init_error_posted = False
        self.running = True
        self.started_ns = time.monotonic_ns()

    # -------------------------------------------------------------------------- main loop

    def run(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.channel.setblocking(False)
        self.listener.setblocking(False)
        self.selector.register(self.channel, selectors.EVENT_READ, "channel")
        self.selector.register(self.listener, selectors.EVENT_READ, "listener")
        self.selector.register(wake_r, selectors.EVENT_READ, "signal")
        self._reap()  # the runtime may already be gone
        while self.running:
            for key, mask in self.selector.select():
                tag = key.data
                if tag == "channel":
                    if mask & selectors.EVENT_READ:
                        self._read_channel()
                    if mask & selectors.EVENT_WRITE:
                        self._flush_channel()
                elif tag == "listener":
                    self._accept()
                elif tag == "signal":
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
                    self._reap()
                else:
                    self._serve(tag, mask)

    # -------------------------------------------------------------------------- the worker

    def send(self, kind: int, meta: Optional[Dict[str, Any]] = None, body: bytes = b"") -> None:
        self.channel_out += protocol.encode(kind, meta, body)
        self._flush_channel()

    def _flush_channel(self) -> None:
        while self.channel_out:
            try:
                sent = self.channel.send(self.channel_out)
            except BlockingIOError:
                break
            except OSError:
                self.running = False
                return
            del self.channel_out[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.channel_out else 0)
        self.selector.modify(self.channel, events, "channel")

    def _read_channel(self) -> None:
        try:
            data = self.channel.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.running = False  # the worker is gone; so are we
            return
        for kind, meta, body in self.frames.feed(data):
            if kind == protocol.INVOKE:
                self.pending = Invocation(meta, body)
                self._deliver()
            elif kind == protocol.SHUTDOWN:
                self.running = False

    # -------------------------------------------------------------------------- the runtime

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.runtime_pid:
                meta: Dict[str, Any] = {}
                if os.WIFSIGNALED(status):
                    meta["signal"] = os.WTERMSIG(status)
                else:
                    meta["status"] = os.WEXITSTATUS(status)
                if self.current is not None and not self.current.answered:
                    meta["request_id"] = self.current.request_id
                self.send(protocol.EXITED, meta)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE):
                    return
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, MAX_REQUEST_BODY)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _serve(self, conn: Connection, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = conn.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._close(conn)
                return
            if data:
                try:
                    requests = conn.feed(data)
                except BadRequest as e:
                    conn.closing = True
                    self._reply(conn, 400, "Bad Request", {"errorMessage": str(e), "errorType": "InvalidRequest"})
                    requests = []
                for request in requests:
                    self._route(conn, request)
        self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            del conn.outbuf[:sent]
        if conn.closing and not conn.outbuf and self.parked is not conn:
            self._close(conn)
            return
        if conn.sock.fileno() in self.conns:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
            self.selector.modify(conn.sock, events, conn)

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        if fd in self.conns:
            del self.conns[fd]
            self.selector.unregister(conn.sock)
        if self.parked is conn:
            self.parked = None
        conn.sock.close()

    def _reply(self, conn: Connection, status: int, reason: str, document: Optional[Dict[str, Any]] = None) -> None:
        body = json.dumps(document).encode() if document is not None else b""
        conn.respond(status, reason, body)

    # -------------------------------------------------------------------------- Runtime API

    def _route(self, conn: Connection, req: Request) -> None:
        if req.headers.get("connection", "").lower() == "close":
            conn.closing = True  # answer, then close (HTTP/1.1), as clients without keep-alive expect
        path = req.path.split("?", 1)[0]
        if not path.startswith(PREFIX):
            self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})
            return
        tail = path[len(PREFIX):]
        if tail == "invocation/next" and req.method == "GET":
            self._next(conn)
        elif tail.startswith("invocation/") and req.method == "POST":
            _, _, rest = tail.partition("/")
            request_id, _, action = rest.rpartition("/")
            if action == "response":
                self._result(conn, req, request_id, error=False)
            elif action == "error":
                self._result(conn, req, request_id, error=True)
            else:
                self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})
        elif tail == "init/error" and req.method == "POST":
            self._init_error(conn, req)
        else:
            self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})

    def _next(self, conn: Connection) -> None:
        current = self.current
        if current is not None and not current.answered:
            # Asking for more work without answering: the invocation failed.
            current.answered = True
            self._report_error(current, "Runtime.Unknown", "Unknown application error occurred")
        self.current = None
        self.parked = conn
        if not self.initialized:
            self.initialized = True
            self.send(protocol.READY, {"init_ns": time.monotonic_ns() - self.started_ns})
        self._deliver()

    def _deliver(self) -> None:
        conn, inv = self.parked, self.pending
        if conn is None or inv is None:
            return
        self.parked = None
        self.pending = None
        self.current = inv
        meta = inv.meta
        headers = [
            ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(meta["deadline_ms"])),
            ("Lambda-Runtime-Invoked-Function-Arn", meta["invoked_arn"]),
        ]
        if meta.get("trace_id"):
            headers.append(("Lambda-Runtime-Trace-Id", meta["trace_id"]))
        if meta.get("client_context"):
            headers.append(("Lambda-Runtime-Client-Context", meta["client_context"]))
        if meta.get("cognito_identity"):
            headers.append(("Lambda-Runtime-Cognito-Identity", meta["cognito_identity"]))
        if meta.get("tenant_id"):
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", meta["tenant_id"]))
        conn.respond(200, "OK", inv.body, headers, meta.get("content_type", "application/json"))
        inv.delivered_ns = time.monotonic_ns()
        self._flush(conn)

    def _result(self, conn: Connection, req: Request, request_id: str, error: bool) -> None:
        inv = self.current
        if inv is None or inv.request_id != request_id:
            self._reply(conn, 403, "Forbidden", {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})
            return
        if inv.answered:
            if inv.failed:  # the answer after a refused, too-large response: accepted, ignored
                self._reply(conn, 202, "Accepted", {"status": "OK"})
            else:
                self._reply(conn, 403, "Forbidden", {
                    "errorMessage": "Invalid state transition", "errorType": "InvalidStateTransition"})
            return
        inv.answered = True
        if req.discarded or len(req.body) > MAX_RESPONSE_BYTES:
            inv.failed = True
            size = req.discarded or len(req.body)
            self._reply(conn, 413, "Payload Too Large", {
                "errorMessage": "Exceeded maximum allowed payload size (%d bytes)." % MAX_RESPONSE_BYTES,
                "errorType": "RequestEntityTooLarge"})
            self._report_error(inv, "Function.ResponseSizeTooLarge",
                               "Response payload size (%d bytes) exceeded maximum allowed payload size "
                               "(%d bytes)." % (size, MAX_RESPONSE_BYTES))
            return
        duration_ns = time.monotonic_ns() - inv.delivered_ns
        self._reply(conn, 202, "Accepted", {"status": "OK"})
        if error:
            self.send(protocol.ERROR, {
                "request_id": request_id,
                "error_type": req.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown"),
                "duration_ns": duration_ns,
            }, req.body)
        else:
            self.send(protocol.RESPONSE, {
                "request_id": request_id,
                "content_type": req.headers.get("content-type", "application/json"),
                "duration_ns": duration_ns,
            }, req.body)

    def _report_error(self, inv: Invocation, error_type: str, message: str) -> None:
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self.send(protocol.ERROR, {
            "request_id": inv.request_id, "error_type": error_type,
            "duration_ns": time.monotonic_ns() - inv.delivered_ns if inv.delivered_ns else 0,
        }, body)

    def _init_error(self, conn: Connection, req: Request) -> None:
        if self.initialized or self.init_error_posted:
            self._reply(conn, 403, "Forbidden", {
                "errorMessage": "Invalid state transition", "errorType": "InvalidStateTransition"})
            return
        self.init_error_posted = True
        self._reply(conn, 202, "Accepted", {"status": "OK"})
        self.send(protocol.INIT_ERROR, {
            "error_type": req.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown"),
            "init_ns": time.monotonic_ns() - self.started_ns,
        }, req.body)


def serve(channel: socket.socket, listener: socket.socket, runtime_pid: int) -> None:
    Init(channel, listener, runtime_pid).run()
