"""A minimal non-blocking HTTP/1.1 connection for the Runtime API server.

It parses requests incrementally (Content-Length and chunked bodies), keeps connections
alive, and buffers writes. It trusts nothing: the peer is function code.
"""

from __future__ import annotations

import socket
from typing import Dict, List, Optional, Tuple

MAX_HEAD = 64 * 1024


class BadRequest(Exception):
    pass


class Request:
    __slots__ = ("body", "discarded", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes, discarded: int = 0) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        # Bytes of a body that was too large and was read but dropped.
        self.discarded = discarded


class Connection:
    """One client connection: feed it bytes, get complete requests; queue responses."""

    def __init__(self, sock: socket.socket, max_body: int) -> None:
        self.sock = sock
        self.max_body = max_body
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.closing = False
        self.waiting = False  # a long poll (`next`) is parked on it: it stays open until answered
        self.writing = False  # output is waiting for the socket to drain (EPOLLOUT is watched)
        # State of the request being read.
        self._head: Optional[Tuple[str, str, Dict[str, str]]] = None
        self._remaining = 0
        self._chunked = False
        self._chunk_state = "size"
        self._trailers: Dict[str, str] = {}
        self._body = bytearray()
        self._discarded = 0

    def feed(self, data: bytes) -> List[Request]:
        self.inbuf += data
        out: List[Request] = []
        while True:
            req = self._next_request()
            if req is None:
                return out
            out.append(req)

    def _next_request(self) -> Optional[Request]:
        buf = self.inbuf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadRequest("request head too large")
                return None
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                raise BadRequest("bad request line")
            headers: Dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise BadRequest("bad header line")
                headers[name.strip().lower()] = value.strip()
            self._head = (parts[0], parts[1], headers)
            self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            self._chunk_state = "size"
            self._trailers = {}
            self._body = bytearray()
            self._discarded = 0
            if not self._chunked:
                try:
                    self._remaining = int(headers.get("content-length", "0"))
                except ValueError:
                    raise BadRequest("bad content-length")
                if self._remaining < 0:
                    raise BadRequest("bad content-length")
        if self._chunked:
            if not self._read_chunks():
                return None
        else:
            take = min(self._remaining, len(buf))
            self._keep(bytes(buf[:take]))
            del buf[:take]
            self._remaining -= take
            if self._remaining:
                return None
        method, path, headers = self._head
        self._head = None
        headers.update(self._trailers)
        req = Request(method, path, headers, bytes(self._body), self._discarded)
        self._body = bytearray()
        return req

    def _keep(self, data: bytes) -> None:
        if self._discarded or len(self._body) + len(data) > self.max_body:
            self._discarded += len(self._body) + len(data)
            self._body = bytearray()
        else:
            self._body += data

    def _read_chunks(self) -> bool:
        """Advance through a chunked body; True once the last chunk and trailers are read."""
        buf = self.inbuf
        while True:
            if self._chunk_state == "data":
                take = min(self._remaining, len(buf))
                self._keep(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining:
                    return False
                self._chunk_state = "crlf"
            elif self._chunk_state == "crlf":
                if len(buf) < 2:
                    return False
                del buf[:2]
                self._chunk_state = "size"
            elif self._chunk_state == "size":
                end = buf.find(b"\r\n")
                if end < 0:
                    return False
                try:
                    size = int(bytes(buf[:end]).split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                del buf[:end + 2]
                self._remaining = size
                self._chunk_state = "data" if size else "trailer"
            else:  # trailer lines, up to an empty line
                end = buf.find(b"\r\n")
                if end < 0:
                    return False
                line = bytes(buf[:end])
                del buf[:end + 2]
                if not line:
                    self._chunk_state = "size"
                    return True
                name, _, value = line.decode("latin-1").partition(":")
                self._trailers[name.strip().lower()] = value.strip()

    def respond(self, status: int, reason: str, body: bytes = b"", headers: Optional[List[Tuple[str, str]]] = None,
                content_type: str = "application/json") -> None:
        self.waiting = False
        lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Type: " + content_type,
                 "Content-Length: %d" % len(body)]
        if headers:
            lines.extend("%s: %s" % h for h in headers)
        if self.closing:
            lines.append("Connection: close")
        # UTF-8, as Lambda sends them: a client context may carry any character.
        self.outbuf += ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        self.outbuf += body
