"""The Lambda API as functions reach it: `AWS_ENDPOINT_URL_LAMBDA` inside every environment.

It listens on the gateway of the environments' bridge (network/host.py), a port the network
rules open to them and to nothing else of the host. Behind it is the same API as the public
endpoint's, less lambdastack's own routes (`/_lambdastack/...`: health, code downloads,
deployments), which a function has no business calling.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from lambdastack.api.asgi import Receive, Scope, Send

OWN_ROUTES = "/_lambdastack"


class FunctionsOnly:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OWN_ROUTES):
            body = b'{"Type":"User","message":"Not found"}'
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _QuietServer(uvicorn.Server):
    """Signals are the main server's: it stops this one on its way out."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FunctionEndpoint:
    """A second uvicorn server, on the listening socket the network made for it."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        config = uvicorn.Config(FunctionsOnly(app), lifespan="off", access_log=False, log_level="warning",
                                http="httptools", server_header=False, date_header=False)
        self.server = _QuietServer(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sock.listen(1024)
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, 5)
