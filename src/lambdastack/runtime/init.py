"""The init of an execution environment: PID 1, serving the Lambda Runtime API.

It sits between the worker (a stream socket carrying protocol frames) and the runtime (HTTP
on 127.0.0.1:9001, `AWS_LAMBDA_RUNTIME_API`). It holds no credentials and no privileges;
everything the runtime sends it is untrusted input. It measures what only it can see
precisely: when an event was handed to the runtime and when the answer came back.

Lifecycle: init is complete (READY) when the runtime first asks `GET .../invocation/next`
and every extension waits for its next event; each INVOKE frame answers the parked `next`
(and is an INVOKE event for subscribed extensions); `.../response` and `.../error` become
RESPONSE and ERROR frames (a response posted in streaming mode is relayed as it arrives:
STREAM_START, STREAM_CHUNKs, STREAM_END); IDLE follows once everyone waits again; the
runtime's exit becomes EXITED. SHUTDOWN is relayed to the extensions, who get until its
deadline to exit.
"""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import time
from typing import Any, Dict, Optional, Set

from lambdastack.runtime import extensions as ext
from lambdastack.runtime import protocol
from lambdastack.runtime import streaming as rs
from lambdastack.runtime.httpserver import BadRequest, BodyPart, Connection, Request

MAX_REQUEST_BODY = 8 * 1024 * 1024
# Larger reads would take a fresh mmap (and munmap) for every message; large bodies take a few reads.
RECV_SIZE = 64 * 1024
PREFIX = "/2018-06-01/runtime/"
# The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI): the function's own
# credentials, for SDKs that look there, to a caller with AWS_CONTAINER_AUTHORIZATION_TOKEN.
CREDENTIALS_PATH = "/2018-06-01/credentials"
ACCEPTED = b'{"status":"OK"}'
# A streamed response is not read further while this much waits to go to the worker.
CHANNEL_HIGH_WATER = 2 * 1024 * 1024
CHANNEL_LOW_WATER = 256 * 1024


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
    def __init__(
        self,
        channel: socket.socket,
        listener: socket.socket,
        runtime_pid: int,
        extensions: Optional[ext.Extensions] = None,
        extension_pids: Optional[Set[int]] = None,
        credentials: Optional[Dict[str, str]] = None,
    ) -> None:
        self.channel = channel
        self.credentials = credentials
        self.listener = listener
        self.runtime_pid = runtime_pid
        self.extensions = extensions if extensions is not None else ext.Extensions({}, 0)
        self.extension_pids = set(extension_pids or ())
        self.runtime_waiting = False  # the runtime is parked in `next`
        self.awaiting_idle = False  # an invocation ran; IDLE is due once everyone waits again
        self.shutdown_deadline: Optional[float] = None
        self.last_request_id = ""  # of the last invocation handed to the runtime
        self.poller = select.epoll()
        self.handlers: Dict[int, Any] = {}  # fd -> callable(events)
        self.channel_writing = False
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
        self.streams: Dict[int, rs.ResponseStream] = {}  # connection fd -> the response it streams
        self.stream: Optional[rs.ResponseStream] = None  # the current invocation's streamed response
        self.stream_resume_at: Optional[float] = None  # when the bandwidth cap lets more of it go

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

        def on_signal(_: int) -> None:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
            self._reap()

        self._watch(self.channel.fileno(), self._on_channel)
        self._watch(self.listener.fileno(), lambda _: self._accept())
        self._watch(wake_r, on_signal)
        self._reap()  # the runtime may already be gone
        poll, handlers = self.poller.poll, self.handlers
        while self.running:
            timeout = -1.0
            if self.shutdown_deadline is not None:
                timeout = max(0.0, self.shutdown_deadline - time.monotonic())
                if timeout == 0.0:
                    self._shutdown_done()
                    continue
            if self.stream_resume_at is not None:
                wait = max(0.0, self.stream_resume_at - time.monotonic())
                timeout = wait if timeout < 0 else min(timeout, wait)
                if wait == 0.0:
                    self.stream_resume_at = None
                    if self.stream is not None:
                        self._stream_flush(self.stream)
                    continue
            for fd, events in poll(timeout):
                handler = handlers.get(fd)
                if handler is not None:
                    handler(events)

    def _watch(self, fd: int, handler: Any, events: int = select.EPOLLIN) -> None:
        self.handlers[fd] = handler
        self.poller.register(fd, events)

    def _on_channel(self, events: int) -> None:
        if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            self._read_channel()
        if events & select.EPOLLOUT:
            self._flush_channel()

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
        if self.stream is not None and len(self.channel_out) < CHANNEL_LOW_WATER:
            self._resume_stream()
        writing = bool(self.channel_out)
        if writing != self.channel_writing:  # an epoll_ctl only when the interest changes
            self.channel_writing = writing
            self.poller.modify(self.channel.fileno(), select.EPOLLIN | (select.EPOLLOUT if writing else 0))

    def _read_channel(self) -> None:
        try:
            data = self.channel.recv(RECV_SIZE)
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
                self.awaiting_idle = True
                for conn in self.extensions.publish(ext.invoke_event(meta)):
                    self._flush(conn)
                self._deliver()
            elif kind == protocol.SHUTDOWN:
                self._shutdown(meta)

    # -------------------------------------------------------------------------- the runtime

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.extension_pids:
                self.extension_pids.discard(pid)
                self.extensions.exited += 1
                self._maybe_ready()
                if self.shutdown_deadline is not None and not self.extension_pids:
                    self._shutdown_done()
                continue
            if pid == self.runtime_pid:
                meta: Dict[str, Any] = {}
                if os.WIFSIGNALED(status):
                    meta["signal"] = os.WTERMSIG(status)
                else:
                    meta["status"] = os.WEXITSTATUS(status)
                if self.current is not None and not self.current.answered:
                    # The event the runtime held: any other the worker sent never reached it.
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
            conn = Connection(sock, MAX_REQUEST_BODY, rs.is_streamed_response)
            self.conns[sock.fileno()] = conn
            self._watch(sock.fileno(), lambda events, conn=conn: self._serve(conn, events))

    def _serve(self, conn: Connection, events: int) -> None:
        if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            try:
                data = conn.sock.recv(RECV_SIZE)
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
                    if isinstance(request, BodyPart):
                        self._stream_part(conn, request)
                    else:
                        self._route(conn, request)
        if conn is self.parked and self.pending is None and not conn.writing and not conn.closing:
            # A runtime that sent its result and its `next` in one write (pipelining) would only
            # wake to read the 202 and wait again: the 202 goes out with its next event.
            return
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
        if conn.closing and not conn.outbuf and not conn.waiting:
            self._close(conn)
            return
        writing = bool(conn.outbuf)
        if writing != conn.writing and conn.sock.fileno() in self.conns:
            conn.writing = writing
            self.poller.modify(conn.sock.fileno(), (0 if conn.paused else select.EPOLLIN)
                               | (select.EPOLLOUT if writing else 0))

    def _close(self, conn: Connection) -> None:
        fd = conn.sock.fileno()
        self._stream_closed(fd)
        if fd in self.conns:
            del self.conns[fd]
            del self.handlers[fd]
            self.poller.unregister(fd)
        if self.parked is conn:
            self.parked = None
        self.extensions.forget(conn)
        conn.sock.close()

    def _reply(self, conn: Connection, status: int, reason: str, document: Optional[Dict[str, Any]] = None) -> None:
        body = json.dumps(document).encode() if document is not None else b""
        conn.respond(status, reason, body)

    # -------------------------------------------------------------------------- Runtime API

    def _route(self, conn: Connection, req: Request) -> None:
        if req.headers.get("connection", "").lower() == "close":
            conn.closing = True  # answer, then close (HTTP/1.1), as clients without keep-alive expect
        path = req.path.split("?", 1)[0]
        if path.startswith(ext.PREFIX):
            self.extensions.route(conn, req)
            if path.endswith("/event/next"):
                self._maybe_ready()
                self._maybe_idle()
            elif path.endswith("/init/error") and self.extensions.errors and not self.initialized:
                error = self.extensions.errors[-1]
                self.init_error_posted = True
                self.send(protocol.INIT_ERROR, {"error_type": error["errorType"],
                                                "init_ns": time.monotonic_ns() - self.started_ns},
                          json.dumps({"errorType": error["errorType"],
                                      "errorMessage": "Extension %s failed: %s" % (error["extension"],
                                                                                   error["errorType"])}).encode())
            return
        if path == CREDENTIALS_PATH and req.method == "GET":
            self._serve_credentials(conn, req)
            return
        if not path.startswith(PREFIX):
            self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})
            return
        tail = path[len(PREFIX):]
        if tail == "invocation/next" and req.method == "GET":
            self._next(conn)
        elif tail.startswith("invocation/") and req.method == "POST":
            _, _, rest = tail.partition("/")
            request_id, _, action = rest.rpartition("/")
            if action == "response" and req.streamed:
                self._stream_start(conn, req, request_id)
            elif action == "response":
                self._result(conn, req, request_id, error=False)
            elif action == "error":
                self._result(conn, req, request_id, error=True)
            else:
                self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})
        elif tail == "init/error" and req.method == "POST":
            self._init_error(conn, req)
        else:
            self._reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})

    def _serve_credentials(self, conn: Connection, req: Request) -> None:
        credentials = self.credentials
        if credentials is None or req.headers.get("authorization") != credentials.get("authorization"):
            self._reply(conn, 403, "Forbidden", {"message": "Invalid authorization token"})
            return
        self._reply(conn, 200, "OK", {k: v for k, v in credentials.items() if k != "authorization"})

    def _next(self, conn: Connection) -> None:
        current = self.current
        if current is not None and not current.answered:
            # Asking for more work without answering: the invocation failed.
            current.answered = True
            self._report_error(current, "Runtime.Unknown", "Unknown application error occurred")
        self.current = None
        self.parked = conn
        conn.waiting = True
        self.runtime_waiting = True
        self._maybe_ready()
        self._deliver()
        self._maybe_idle()

    def _maybe_ready(self) -> None:
        """Init ends when the runtime and every extension wait for their next event."""
        if self.initialized or self.init_error_posted or not self.runtime_waiting or not self.extensions.settled:
            return
        self.initialized = True
        self.extensions.registration_open = False
        self.send(protocol.READY, {"init_ns": time.monotonic_ns() - self.started_ns,
                                   "extensions": len(self.extensions), "runtime_pid": self.runtime_pid})

    def _maybe_idle(self) -> None:
        """After an invocation: once everyone waits again, the worker may freeze us."""
        if (self.awaiting_idle and self.initialized and self.pending is None and self.parked is not None
                and self.extensions.settled):
            self.awaiting_idle = False
            if len(self.extensions):  # without extensions the worker knows it already
                self.send(protocol.IDLE, {"request_id": self.last_request_id})

    def _shutdown(self, meta: Dict[str, Any]) -> None:
        """SHUTDOWN: extensions that subscribed are told, and get until the deadline to exit."""
        if not len(self.extensions) or not self.extension_pids:
            self.running = False
            return
        deadline_ms = int(meta.get("deadline_ms") or (time.time() + 2) * 1000)
        for conn in self.extensions.publish(ext.shutdown_event(meta.get("reason", "spindown"), deadline_ms)):
            self._flush(conn)
        self.shutdown_deadline = time.monotonic() + max(0.0, deadline_ms / 1000 - time.time())

    def _shutdown_done(self) -> None:
        self.send(protocol.EXITED, {"shutdown": True})
        self.running = False

    def _deliver(self) -> None:
        conn, inv = self.parked, self.pending
        if conn is None or inv is None:
            return
        self.parked = None
        self.pending = None
        self.current = inv
        self.last_request_id = inv.request_id
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
                conn.respond(202, "Accepted", ACCEPTED)
            else:
                self._reply(conn, 403, "Forbidden", {
                    "errorMessage": "Invalid state transition", "errorType": "InvalidStateTransition"})
            return
        inv.answered = True
        if req.discarded or len(req.body) > protocol.MAX_RESPONSE_BYTES:
            inv.failed = True
            self._reply(conn, 413, "Payload Too Large", protocol.refusal_of_too_large())
            self._report_error(inv, "Function.ResponseSizeTooLarge",
                               protocol.too_large_message(req.discarded or len(req.body)))
            return
        duration_ns = time.monotonic_ns() - inv.delivered_ns
        conn.respond(202, "Accepted", ACCEPTED)
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

    # -------------------------------------------------------------------------- streamed responses

    def _stream_start(self, conn: Connection, req: Request, request_id: str) -> None:
        """The head of a response in streaming mode: relay it; its body follows in `_stream_part`."""
        inv = self.current
        fd = conn.sock.fileno()
        if inv is None or inv.request_id != request_id:
            self.streams[fd] = rs.ResponseStream(conn, refusal=(403, "Forbidden", {
                "errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}))
            return
        if inv.answered or (self.stream is not None and self.stream.invocation is inv):
            self.streams[fd] = rs.ResponseStream(conn, refusal=(403, "Forbidden", {
                "errorMessage": "Invalid state transition", "errorType": "InvalidStateTransition"}))
            return
        # `answered` stays False until the last chunk: a runtime that exits or asks for its
        # next event before then has failed the invocation.
        self.stream = self.streams[fd] = rs.ResponseStream(conn, inv)
        self.send(protocol.STREAM_START, {
            "request_id": request_id, "content_type": req.headers.get("content-type", rs.DEFAULT_CONTENT_TYPE),
        })

    def _stream_part(self, conn: Connection, part: BodyPart) -> None:
        fd = conn.sock.fileno()
        stream = self.streams.get(fd)
        if stream is None:
            return
        live = self._stream_live(stream)
        if live and part.data:
            stream.take(part.data, time.monotonic())
            if stream.too_large:
                self._stream_too_large(stream)
                return
        if part.last:
            del self.streams[fd]
            if stream.dropped:
                return  # answered 413 already; the connection is closing
            if stream.refusal is not None:
                self._reply(conn, *stream.refusal)
                return
            if not live:
                self._stream_forget(stream)
                self._reply(conn, 403, "Forbidden", {
                    "errorMessage": "Invalid state transition", "errorType": "InvalidStateTransition"})
                return
            stream.trailers = part.trailers
        if live:
            self._stream_flush(stream)

    def _stream_live(self, stream: rs.ResponseStream) -> bool:
        """Whether the stream still answers the invocation the runtime is working on."""
        inv = stream.invocation
        return inv is not None and not inv.answered and not stream.dropped and inv is self.current

    def _stream_flush(self, stream: rs.ResponseStream) -> None:
        """Relay what the bandwidth cap lets go; end the invocation once all of it went."""
        if not self._stream_live(stream):
            self._stream_forget(stream)
            return
        data = stream.release(time.monotonic())
        if data:
            self.send(protocol.STREAM_CHUNK, None, data)
        if stream.held:
            self.stream_resume_at = stream.next_release_at()
            self._set_paused(stream.conn, True)
        elif stream.trailers is not None:
            self._stream_end(stream)
        elif len(self.channel_out) > CHANNEL_HIGH_WATER:
            self._set_paused(stream.conn, True)  # the worker lags behind: hold the runtime back
        else:
            self._resume_stream()

    def _stream_end(self, stream: rs.ResponseStream) -> None:
        inv = stream.invocation
        assert inv is not None and stream.trailers is not None
        self._stream_forget(stream)
        inv.answered = True
        stream.conn.respond(202, "Accepted", ACCEPTED)
        self._flush(stream.conn)
        meta: Dict[str, Any] = {"request_id": inv.request_id, "duration_ns": time.monotonic_ns() - inv.delivered_ns}
        error_type, body = rs.error_body(stream.trailers)
        if error_type is not None:
            meta["error_type"] = error_type
        self.send(protocol.STREAM_END, meta, body)

    def _stream_forget(self, stream: rs.ResponseStream) -> None:
        """The stream is no longer the current one: nothing of it waits to be read or relayed."""
        stream.held.clear()
        if self.stream is stream:
            self.stream = None
            self.stream_resume_at = None
        self._set_paused(stream.conn, False)

    def _stream_too_large(self, stream: rs.ResponseStream) -> None:
        """Past Lambda's limit for streamed responses: refuse the rest, fail the invocation."""
        inv = stream.invocation
        assert inv is not None
        self._stream_forget(stream)
        inv.answered = inv.failed = True
        stream.dropped = True
        conn = stream.conn
        conn.closing = True  # the rest of the body is not read
        self._reply(conn, 413, "Payload Too Large", {
            "errorMessage": "Exceeded maximum allowed payload size (%d bytes)." % rs.MAX_STREAM_BYTES,
            "errorType": "RequestEntityTooLarge"})
        self._flush(conn)
        self._report_error(inv, "Function.ResponseSizeTooLarge",
                           "Response payload size exceeded maximum allowed payload size (%d bytes)."
                           % rs.MAX_STREAM_BYTES)

    def _stream_closed(self, fd: int) -> None:
        """The runtime closed a connection in the middle of streaming.

        Nothing is reported yet: if the runtime exited, EXITED says so; if it asks for its
        next event, the invocation failed (see `_next`); otherwise it times out.
        """
        stream = self.streams.pop(fd, None)
        if stream is not None and self.stream is stream:
            stream.held.clear()
            self.stream = None
            self.stream_resume_at = None

    def _resume_stream(self) -> None:
        """Read the stream again, unless it is held back (by the cap, or the worker lagging behind)."""
        stream = self.stream
        if (stream is not None and stream.conn.paused and not stream.held
                and len(self.channel_out) < CHANNEL_LOW_WATER):
            self._set_paused(stream.conn, False)

    def _set_paused(self, conn: Connection, paused: bool) -> None:
        if conn.paused == paused:
            return
        conn.paused = paused
        fd = conn.sock.fileno()
        if fd in self.conns:
            self.poller.modify(fd, (0 if paused else select.EPOLLIN) | (select.EPOLLOUT if conn.writing else 0))

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
        conn.respond(202, "Accepted", ACCEPTED)
        self.send(protocol.INIT_ERROR, {
            "error_type": req.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown"),
            "init_ns": time.monotonic_ns() - self.started_ns,
        }, req.body)


def serve(
    channel: socket.socket,
    listener: socket.socket,
    runtime_pid: int,
    extensions: Optional[ext.Extensions] = None,
    extension_pids: Optional[Set[int]] = None,
    credentials: Optional[Dict[str, str]] = None,
) -> None:
    Init(channel, listener, runtime_pid, extensions, extension_pids, credentials).run()
