"""A Runtime API client on one persistent HTTP/1.1 connection.

Every warm invocation costs one `next` and one result post, so this speaks just enough
HTTP/1.1 over a raw socket (keep-alive, TCP_NODELAY, Content-Length and chunked bodies)
and nothing more. The `next` call has no timeout: it blocks while the environment is
frozen. If the server closed the idle connection, the request is sent again on a new one.
"""

from __future__ import annotations

import re
import socket
import sys
from typing import Any, Dict, List, Optional, Tuple

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
MAX_XRAY_CAUSE = 1024 * 1024  # a larger X-Ray cause is not sent

_MAX_HEAD = 1024 * 1024
_RECV_SIZE = 64 * 1024  # a larger buffer would cost an mmap and munmap per read
_COALESCE = 64 * 1024  # bodies up to this size go out in the same send as the head
_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)  # a closed peer must not raise SIGPIPE
_TRIM = " \t\r\n\x0b\x0c"
_URL_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+").fullmatch


class RuntimeApiError(Exception):
    """The Runtime API failed or refused a request; the runtime cannot go on."""


class _Stale(Exception):
    """The connection was closed before any byte of the response arrived."""


class Invocation(object):
    """One event from `next`, with the headers the runtime uses."""

    __slots__ = (
        "body", "client_context", "cognito_identity", "content_type", "deadline_ms",
        "invoked_function_arn", "request_id", "tenant_id", "trace_id",
    )  # fmt: skip

    def __init__(self, headers: Dict[str, str], body: bytes) -> None:
        get = headers.get
        self.request_id = get("lambda-runtime-aws-request-id", "")
        self.invoked_function_arn = get("lambda-runtime-invoked-function-arn", "")
        self.trace_id = get("lambda-runtime-trace-id") or None
        self.client_context = get("lambda-runtime-client-context") or None
        self.cognito_identity = get("lambda-runtime-cognito-identity") or None
        self.tenant_id = get("lambda-runtime-aws-tenant-id") or None
        self.content_type = get("content-type") or None
        self.deadline_ms = _leading_int(get("lambda-runtime-deadline-ms", ""))
        self.body = body


def _leading_int(text: str) -> int:
    """The number at the start of text, 0 if none (as strtoul reads a deadline)."""
    if text.isdigit() and text.isascii():
        return int(text)
    digits = 0
    for c in text:
        if not "0" <= c <= "9":
            break
        digits += 1
    return int(text[:digits]) if digits else 0


def _path_segment(value: str) -> str:
    if _PLAIN_SEGMENT(value):
        return value
    data = value.encode("utf-8")
    return "".join(chr(b) if b in _URL_SAFE else "%%%02X" % b for b in data)


def _header_value(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


class RuntimeClient(object):
    def __init__(self, address: str, user_agent: Optional[str] = None) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("AWS_LAMBDA_RUNTIME_API must be host:port, not %r" % address)
        self.address = address
        self._host = host[1:-1] if host.startswith("[") else host
        self._port = int(port)
        self._sockaddr: Optional[Tuple[Any, Any]] = None
        self._sock: Optional[socket.socket] = None
        self._pending = b""
        agent = user_agent or "lambdastack-python/%d.%d.%d" % sys.version_info[:3]
        self._common = "Host: %s\r\nUser-Agent: %s\r\n" % (address, agent)
        self._next_head = self._head("GET", API_PREFIX + "/invocation/next", "", None).encode()
        # Filled in with the request id, the content type and the length of each result.
        self._response_head = "POST %s/invocation/%%s/response HTTP/1.1\r\n%s%s\r\n" % (
            API_PREFIX,
            self._common.replace("%", "%%"),
            "Content-Type: %s\r\nContent-Length: %d\r\n",
        )

    # ---------------------------------------------------------------- endpoints

    def next(self) -> Invocation:
        """Wait (without limit) for the next event."""
        status, headers, body = self._request(self._next_head, b"")
        if not 200 <= status < 300:
            raise RuntimeApiError("Failed to get next invocation. Http Response code: %d" % status)
        if "lambda-runtime-aws-request-id" not in headers:
            raise RuntimeApiError("Failed to get next invocation: no Lambda-Runtime-Aws-Request-Id header")
        return Invocation(headers, body)

    def post_response(self, request_id: str, body: bytes, content_type: str) -> None:
        head = self._response_head % (_path_segment(request_id), content_type, len(body))
        self._post(head, body, "invocation response")

    def respond_and_next(self, request_id: str, body: bytes, content_type: str) -> Invocation:
        """Post a result and ask for the next event in one write (HTTP pipelining).

        The Runtime API answers both in order; one round trip less per invocation. On a
        connection that turns out to be closed, fall back to one request after the other.
        """
        sock = self._sock
        if sock is None or self._pending:
            self.post_response(request_id, body, content_type)
            return self.next()
        head = (self._response_head % (_path_segment(request_id), content_type, len(body))).encode("utf-8")
        try:
            if len(body) <= _COALESCE:
                sock.sendall(head + body + self._next_head, _SEND_FLAGS)
            else:
                sock.sendall(head, _SEND_FLAGS)
                sock.sendall(body + self._next_head, _SEND_FLAGS)
            status, _, reply = self._read_response(sock)
        except (_Stale, BrokenPipeError, ConnectionResetError):
            self.close()
            self.post_response(request_id, body, content_type)
            return self.next()
        except OSError as e:
            self.close()
            raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))
        if not 200 <= status < 300:
            raise RuntimeApiError("Failed to post invocation response. Http response code: %d. %s"
                                  % (status, reply.decode("utf-8", "replace")))
        try:
            status, headers, payload = self._read_response(sock)
        except (_Stale, OSError) as e:
            self.close()
            raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))
        if not 200 <= status < 300:
            raise RuntimeApiError("Failed to get next invocation. Http Response code: %d" % status)
        if "lambda-runtime-aws-request-id" not in headers:
            raise RuntimeApiError("Failed to get next invocation: no Lambda-Runtime-Aws-Request-Id header")
        return Invocation(headers, payload)

    def post_error(self, request_id: str, body: bytes, error_type: str, xray_cause: Optional[str]) -> None:
        headers = "Content-Type: application/json\r\n%s: %s\r\n" % (ERROR_TYPE_HEADER, _header_value(error_type))
        if xray_cause and len(xray_cause.encode("utf-8")) < MAX_XRAY_CAUSE:
            headers += "%s: %s\r\n" % (XRAY_CAUSE_HEADER, _header_value(xray_cause))
        path = "%s/invocation/%s/error" % (API_PREFIX, _path_segment(request_id))
        self._post(self._head("POST", path, headers, len(body)), body, "invocation error")

    def post_init_error(self, body: bytes, error_type: str) -> None:
        headers = "%s: %s\r\n" % (ERROR_TYPE_HEADER, _header_value(error_type))
        self._post(self._head("POST", API_PREFIX + "/init/error", headers, len(body)), body, "init error")

    def restore_next(self) -> None:
        """Signal readiness for a snapshot; returns once the environment is restored."""
        status, _, _ = self._request(self._head("GET", API_PREFIX + "/restore/next", "", None).encode(), b"")
        if status != 200:
            raise RuntimeApiError("Failed to get restore next. Http Response code: %d" % status)

    def post_restore_error(self, body: bytes, error_type: str) -> None:
        headers = "%s: %s\r\n" % (ERROR_TYPE_HEADER, _header_value(error_type))
        self._post(self._head("POST", API_PREFIX + "/restore/error", headers, len(body)), body, "restore error")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._pending = b""
        if sock is not None:
            sock.close()

    # ---------------------------------------------------------------- HTTP

    def _head(self, method: str, path: str, headers: str, length: Optional[int]) -> str:
        if length is not None:
            headers += "Content-Length: %d\r\n" % length
        return "%s %s HTTP/1.1\r\n%s%s\r\n" % (method, path, self._common, headers)

    def _post(self, head: str, body: bytes, what: str) -> None:
        status, _, reply = self._request(head.encode("utf-8"), body)
        if not 200 <= status < 300:
            raise RuntimeApiError(
                "Failed to post %s. Http response code: %d. %s" % (what, status, reply.decode("utf-8", "replace"))
            )

    def _connect(self) -> socket.socket:
        if self._sockaddr is None:
            family, _, _, _, sockaddr = socket.getaddrinfo(self._host, self._port, 0, socket.SOCK_STREAM)[0]
            self._sockaddr = (family, sockaddr)
        family, sockaddr = self._sockaddr
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._pending = b""
        return sock

    def _request(self, head: bytes, body: bytes) -> Tuple[int, Dict[str, str], bytes]:
        for attempt in (1, 2):
            sock = self._sock
            reused = sock is not None
            try:
                if sock is None:
                    sock = self._connect()
                if len(body) <= _COALESCE:
                    sock.sendall(head + body if body else head, _SEND_FLAGS)
                else:
                    sock.sendall(head, _SEND_FLAGS)
                    sock.sendall(body, _SEND_FLAGS)
                return self._read_response(sock)
            except _Stale:
                self.close()
                if not reused or attempt == 2:
                    raise RuntimeApiError("Runtime API at %s closed the connection" % self.address)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if not reused or attempt == 2:
                    raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))
            except OSError as e:
                self.close()
                raise RuntimeApiError("Runtime API at %s: %s" % (self.address, e))
        raise AssertionError("unreachable")

    def _read_response(self, sock: socket.socket) -> Tuple[int, Dict[str, str], bytes]:
        buf = self._pending
        self._pending = b""
        while True:
            end = buf.find(b"\r\n\r\n")
            while end < 0:
                try:
                    chunk = sock.recv(_RECV_SIZE)
                except ConnectionResetError:
                    if not buf:
                        raise _Stale()
                    raise
                if not chunk:
                    if not buf:
                        raise _Stale()
                    raise RuntimeApiError("Runtime API closed the connection during a response")
                buf += chunk
                if len(buf) > _MAX_HEAD:
                    raise RuntimeApiError("Runtime API response head too large")
                end = buf.find(b"\r\n\r\n")
            lines = buf[:end].decode("utf-8", "replace").split("\r\n")
            buf = buf[end + 4 :]
            status_line = lines.pop(0)
            version, _, rest = status_line.partition(" ")
            try:
                status = int(rest[:3])
            except ValueError:
                raise RuntimeApiError("bad status line from the Runtime API: %r" % status_line)
            if 100 <= status < 200:
                continue  # an interim response: the real one follows
            lines.reverse()  # so that the first of repeated headers wins
            headers = {n.strip(_TRIM).lower(): v.strip(_TRIM) for n, sep, v in [h.partition(":") for h in lines] if sep}
            closing = False
            if "connection" in headers or version != "HTTP/1.1":
                connection = headers.get("connection", "").lower()
                closing = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
            body, buf = self._read_body(sock, status, headers, buf, closing)
            if closing:
                self.close()
            else:
                self._pending = buf
            return status, headers, body

    def _read_body(
        self, sock: socket.socket, status: int, headers: Dict[str, str], buf: bytes, closing: bool
    ) -> Tuple[bytes, bytes]:
        if "transfer-encoding" in headers and "chunked" in headers["transfer-encoding"].lower():
            return self._read_chunked(sock, buf)
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise RuntimeApiError("bad Content-Length from the Runtime API: %r" % length)
            return self._read_exact(sock, buf, size)
        if closing and status not in (204, 304):
            parts = [buf]
            while True:
                chunk = sock.recv(_RECV_SIZE)
                if not chunk:
                    return b"".join(parts), b""
                parts.append(chunk)
        return b"", buf  # no length and a connection kept open: an empty body

    def _read_exact(self, sock: socket.socket, buf: bytes, size: int) -> Tuple[bytes, bytes]:
        if len(buf) >= size:
            return buf[:size], buf[size:]
        data = bytearray(size)
        view = memoryview(data)
        got = len(buf)
        view[:got] = buf
        while got < size:
            n = sock.recv_into(view[got:], size - got)
            if not n:
                raise RuntimeApiError("Runtime API closed the connection during a response body")
            got += n
        return bytes(data), b""

    def _fill(self, sock: socket.socket, buf: bytes) -> bytes:
        chunk = sock.recv(_RECV_SIZE)
        if not chunk:
            raise RuntimeApiError("Runtime API closed the connection during a chunked body")
        return buf + chunk

    def _read_chunked(self, sock: socket.socket, buf: bytes) -> Tuple[bytes, bytes]:
        parts: List[bytes] = []
        while True:
            end = buf.find(b"\r\n")
            while end < 0:
                buf = self._fill(sock, buf)
                end = buf.find(b"\r\n")
            try:
                size = int(buf[:end].split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise RuntimeApiError("bad chunk size from the Runtime API")
            buf = buf[end + 2 :]
            if size == 0:
                break
            data, buf = self._read_exact(sock, buf, size + 2)
            parts.append(data[:size])
        while True:  # trailers, up to an empty line
            end = buf.find(b"\r\n")
            while end < 0:
                buf = self._fill(sock, buf)
                end = buf.find(b"\r\n")
            line, buf = buf[:end], buf[end + 2 :]
            if not line:
                return b"".join(parts), buf
