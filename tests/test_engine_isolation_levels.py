"""Isolation levels other than full namespaces + cgroups: plain processes on request, and
unprivileged user namespaces for a server that does not run as root."""

from __future__ import annotations

import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import unprivileged
from helpers import ECHO, Server, create_function, invoke, invoke_ok
from unprivileged import UNPRIVILEGED_USER

WHO = '''
import os, sys

def handler(event, context):
    return {"event": event, "uid": os.getuid(), "pid": os.getpid(), "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "version": list(sys.version_info[:2])}
'''


def isolation_of(server: Server) -> str:
    return str(requests.get(server.url + "/_lambdastack/health", timeout=5).json()["isolation"])


# -- process isolation -----------------------------------------------------------------------------


@pytest.fixture
def open_data_dir() -> Iterator[Path]:
    """A data dir whose parents anyone may traverse (functions run as their own uid there)."""
    parent = Path(tempfile.mkdtemp(prefix="lambdastack-process-"))
    parent.chmod(0o755)
    yield parent / "data"
    shutil.rmtree(parent, ignore_errors=True)


def test_process_isolation_on_request(private_server: Any, open_data_dir: Path) -> None:
    server = private_server("--isolation", "process", data_dir=open_data_dir)
    assert isolation_of(server).split("+")[0] == "process"
    lam = server.client()
    name = create_function(lam, WHO)
    r = invoke_ok(lam, name, {"level": "process"})
    assert r["event"] == {"level": "process"}
    assert r["pid"] > 1  # not in a PID namespace of its own
    echo = create_function(lam, ECHO)
    assert invoke_ok(lam, echo, [1, "two"]) == [1, "two"]
    assert "ISOLATION IS OFF" in server.log()  # said loudly at start-up


def test_process_isolation_with_a_private_data_dir(private_server: Any, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    server = private_server("--isolation", "process", data_dir=tmp_path / "private" / "data")
    lam = server.client()
    name = create_function(lam, WHO)
    assert invoke_ok(lam, name, {"level": "process"})["event"] == {"level": "process"}


# -- an unprivileged server: user namespaces -------------------------------------------------------


@pytest.fixture(scope="module")
def unprivileged_server() -> Iterator[Server]:
    with unprivileged.unprivileged_server() as server:
        yield server


def test_unprivileged_server_picks_user_namespaces(unprivileged_server: Server) -> None:
    assert unprivileged_server.proc is not None
    owner = Path(f"/proc/{unprivileged_server.pid}/status").read_text()
    uid_line = next(line for line in owner.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] == str(pwd.getpwnam(UNPRIVILEGED_USER).pw_uid)
    isolation = isolation_of(unprivileged_server)
    assert isolation.split("+")[0] == "userns", isolation
    assert "cgroups" not in isolation  # cgroups need root


def test_unprivileged_server_runs_functions(unprivileged_server: Server) -> None:
    lam = unprivileged_server.client()
    name = create_function(lam, WHO)
    r = invoke(lam, name, {"level": "userns"})
    assert r.function_error is None, r.payload
    assert r.result["event"] == {"level": "userns"}
    assert r.result["pid"] < 10  # in a PID namespace of its own
    assert r.result["task_root"] == "/var/task"
    assert invoke_ok(lam, name, {"again": True})["event"] == {"again": True}
