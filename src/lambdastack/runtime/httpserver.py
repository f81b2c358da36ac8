"""A minimal non-blocking HTTP/1.1 connection for the Runtime API server.

It parses requests incrementally (Content-Length and chunked bodies), keeps connections
alive, and buffers writes. It trusts nothing: the peer is function code.

Most requests are handed over whole. A request the `streams` policy picks (a response the
runtime streams) is handed over as it arrives instead: its head as a `Request` marked
`streamed`, then its body as `BodyPart`s, the last of which carries the trailers.
"""

from __future__ import annotations

import socket
from typing import Callable, Dict, List, Optional, Tuple, Union

MAX_HEAD = 64 * 1024


class BadRequest(Exception):
    pass


class Request:
    __slots__ = ("body", "discarded", "headers", "method", "path", "streamed")

    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes, discarded: int = 0,
                 streamed: bool = False) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        # Bytes of a body that was too large and was read but dropped.
        self.discarded = discarded
        # Only the head: the body follows as BodyParts.
        self.streamed = streamed


class BodyPart:
    """Bytes of a streamed request's body, in order; the last part carries the trailers."""

    __slots__ = ("data", "last", "trailers")

    def __init__(self, data: bytes, last: bool = False, trailers: Optional[Dict[str, str]] = None) -> None:
        self.data = data
        self.last = last
        self.trailers = trailers or {}


# (method, path, headers) -> whether to hand the body over as it arrives
StreamPolicy = Callable[[str, str, Dict[str, str]], bool]


class Connection:
    """One client connection: feed it bytes, get complete requests; queue responses."""

    def __init__(self, sock: socket.socket, max_body: int, streams: Optional[StreamPolicy] = None) -> None:
        self.sock = sock
        self.max_body = max_body
        self.streams = streams
        self.paused = False  # its owner stopped reading from it for now (flow control)
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
        self._streamed = False  # the request being read is handed over as it arrives
        self._part = bytearray()  # body bytes of a streamed request not handed over yet

    def feed(self, data: bytes) -> "List[Union[Request, BodyPart]]":
        self.inbuf += data
        out: List[Union[Request, BodyPart]] = []
        while True:
            if self._head is None:
                head = self._read_head()
                if head is None:
                    return out
                if self._streamed:
                    out.append(Request(head[0], head[1], head[2], b"", streamed=True))
            done = self._read_chunks() if self._chunked else self._read_length()
            if self._part:
                out.append(BodyPart(bytes(self._part)))
                self._part = bytearray()
            if not done:
                return out
            out.append(self._finish())

    def _read_head(self) -> Optional[Tuple[str, str, Dict[str, str]]]:
        buf = self.inbuf
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
        self._streamed = self.streams is not None and self.streams(parts[0], parts[1], headers)
        if not self._chunked:
            try:
                self._remaining = int(headers.get("content-length", "0"))
            except ValueError:
                raise BadRequest("bad content-length")
            if self._remaining < 0:
                raise BadRequest("bad content-length")
        return self._head

    def _read_length(self) -> bool:
        """Advance through a Content-Length body; True once all of it is read."""
        buf = self.inbuf
        take = min(self._remaining, len(buf))
        self._keep(bytes(buf[:take]))
        del buf[:take]
        self._remaining -= take
        return not self._remaining

    def _finish(self) -> "Union[Request, BodyPart]":
        assert self._head is not None
        method, path, headers = self._head
        self._head = None
        if self._streamed:
            self._streamed = False
            return BodyPart(b"", True, self._trailers)
        headers.update(self._trailers)
        req = Request(method, path, headers, bytes(self._body), self._discarded)
        self._body = bytearray()
        return req

    def _keep(self, data: bytes) -> None:
        if self._streamed:
            self._part += data
            return
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
