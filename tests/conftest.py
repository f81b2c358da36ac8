"""Fixtures: one shared server for the suite, plus helpers to start private ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import image_builder as ib
import pytest
from helpers import Server
from moto_helpers import aws, moto_backed_server, moto_url  # noqa: F401 - fixtures for every test module


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def lam(server: Server) -> Any:
    """A boto3 Lambda client pointed at the shared server; only the endpoint differs from AWS."""
    return server.client()


@pytest.fixture(scope="session")
def plain_lam(server: Server) -> Any:
    """A client of the shared server that no test attaches response hooks to.

    Invoke's payload is a stream: a hook that reads the raw response body (the shape checks
    on `lam`) consumes it before the caller can.
    """
    return server.client()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ib.Registry]:
    """A real OCI registry (Debian's docker-registry) on a free loopback port, per test module."""
    missing = ib.tools_missing()
    if missing:
        pytest.skip(missing)
    reg = ib.Registry(tmp_path_factory.mktemp("registry")).start()
    yield reg
    reg.stop()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[Any]:
    """Start servers of the test's own (restart, crash and configuration tests)."""
    started: list[Server] = []

    def start(*extra: str, data_dir: Path | None = None, **kwargs: Any) -> Server:
        srv = Server(data_dir or tmp_path / f"data{len(started)}", *extra, **kwargs).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        try:
            srv.stop()
        except Exception:
            srv.kill()
