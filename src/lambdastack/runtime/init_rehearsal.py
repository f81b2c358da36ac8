"""A rehearsal of the init's part in a cold start, in an environment built ahead of its function.

As for the runtime (runtime/python/rehearsal.py): PID 1 of an environment built ahead of
demand serves one stand-in exchange before its function is known, through the same
methods its event loop calls (a runtime's `next`, READY, an INVOKE frame, the event, the
response, RESPONSE), over socket pairs of its own. The pages of the zygote's heap these
paths write to are copied then rather than during a cold start.

Nothing of the rehearsal outlives it: its Init object, poller and sockets are closed.
"""

from __future__ import annotations

import select
import socket

from lambdastack.runtime import init, protocol
from lambdastack.runtime import streaming as rs
from lambdastack.runtime.httpserver import Connection

_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
_NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: r\r\n\r\n"
_RESPONSE = (
    "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUser-Agent: r\r\n"
    "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" % _REQUEST_ID
).encode()


def rehearse() -> None:
    """Serve one stand-in invocation; never raises."""
    sockets = [*socket.socketpair(), *socket.socketpair()]
    worker, channel, runtime, conn_sock = sockets
    stand_in = None
    try:
        listener = socket.socket(fileno=socket.dup(channel.fileno()))  # never listened on
        sockets.append(listener)
        for sock in (channel, conn_sock):
            sock.setblocking(False)
        stand_in = init.Init(channel, listener, 0)
        stand_in._watch(channel.fileno(), stand_in._on_channel)
        conn = Connection(conn_sock, init.MAX_REQUEST_BODY, rs.is_streamed_response)
        stand_in.conns[conn_sock.fileno()] = conn
        stand_in._watch(conn_sock.fileno(), lambda events: stand_in._serve(conn, events))
        runtime.sendall(_NEXT)
        stand_in._serve(conn, select.EPOLLIN)  # -> READY
        worker.sendall(protocol.encode(protocol.INVOKE, {
            "request_id": _REQUEST_ID, "deadline_ms": 1_900_000_000_000,
            "invoked_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
            "trace_id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
            "content_type": "application/json",
        }, b"{}"))
        stand_in._on_channel(select.EPOLLIN)  # -> the event, to the parked `next`
        runtime.recv(65536)
        runtime.sendall(_RESPONSE + _NEXT)
        stand_in._serve(conn, select.EPOLLIN)  # -> RESPONSE, and `next` parked again
        worker.recv(65536)
    except Exception:
        pass  # a rehearsal that fails costs only what it would have saved
    finally:
        if stand_in is not None:
            stand_in.poller.close()
        for sock in sockets:
            sock.close()
