"""Isolation levels other than full namespaces + cgroups: plain processes on request, and
unprivileged user namespaces for a server that does not run as root."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import ECHO, Server, as_user, create_function, invoke, invoke_ok

UNPRIVILEGED_USER = "nobody"

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


def run_as(user: str, *command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_user(user), *command], capture_output=True, text=True, env=env, cwd="/",
                          timeout=60, check=False)


def python_for(user: str) -> tuple[str, dict[str, str]] | None:
    """An interpreter `user` can run lambdastack with, and the environment it needs.

    The project's venv interpreter first; when `user` cannot reach its real binary (a
    version manager's install under a private home), the system's CPython of the same
    version with the venv's packages on its path.
    """
    check = ("import os, sys, lambdastack, uvicorn, orjson; "
             "real = os.path.realpath(getattr(sys, '_base_executable', sys.executable)); "
             "sys.exit(0 if os.access(real, os.X_OK) and os.access(sys.executable, os.X_OK) else 3)")
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    spec = importlib.util.find_spec("lambdastack")
    assert spec is not None and spec.origin is not None
    source_root = str(Path(spec.origin).resolve().parent.parent)
    packages = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates: list[tuple[str, dict[str, str]]] = [(sys.executable, base_env)]
    for folder in ("/usr/bin", "/usr/local/bin"):
        path = os.path.join(folder, version)
        if os.path.exists(path):
            candidates.append((path, {**base_env, "PYTHONPATH": f"{source_root}:{packages}"}))
    for python, env in candidates:
        if run_as(user, python, "-c", check, env=env).returncode == 0:
            return python, env
    return None


def userns_available(user: str) -> bool:
    probe = run_as(user, "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--net", "--ipc",
                   "--uts", "true")
    return probe.returncode == 0


@pytest.fixture(scope="module")
def unprivileged_server() -> Iterator[Server]:
    if os.geteuid() != 0:
        pytest.skip("starting a server as another user needs root")
    try:
        pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        pytest.skip(f"no user {UNPRIVILEGED_USER!r} on this host")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    if not userns_available(UNPRIVILEGED_USER):
        pytest.skip(f"unprivileged user namespaces are not available to {UNPRIVILEGED_USER!r} on this host")
    found = python_for(UNPRIVILEGED_USER)
    if found is None:
        pytest.skip(f"no Python interpreter with lambdastack's dependencies that {UNPRIVILEGED_USER!r} can run")
    python, env = found
    account = pwd.getpwnam(UNPRIVILEGED_USER)
    home = Path(tempfile.mkdtemp(prefix="lambdastack-userns-"))
    os.chown(home, account.pw_uid, account.pw_gid)
    home.chmod(0o700)
    server = Server(home / "data", "--isolation", "auto", user=UNPRIVILEGED_USER, python=python, env=env)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except Exception:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)


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
