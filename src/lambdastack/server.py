"""Run the platform on uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
from collections.abc import Generator

import uvicorn

from lambdastack.app import build_app
from lambdastack.config import Settings
from lambdastack.server_protocol import GatheringHttpToolsProtocol


def serve(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _raise_open_file_limit()
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=GatheringHttpToolsProtocol,  # httptools, each response in one write
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        server_header=False,
        date_header=False,
    )
    server = _Server(config)
    server.run()
    return 0 if server.started else 1


def _raise_open_file_limit() -> None:
    """Up to the hard limit: each environment holds three descriptors here (its init's channel,
    its runtime's and its output), and a host's usual soft limit of 1,024 would cap a server
    at a few hundred environments."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT/SIGTERM shutdown is a clean exit (status 0).

    uvicorn re-raises the captured signal after its graceful shutdown, which makes the
    process die of that signal; tools that start lambdastack expect a clean exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
