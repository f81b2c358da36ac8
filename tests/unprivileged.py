"""A lambdastack server run as an unprivileged user, as a user without root runs it."""

from __future__ import annotations

import contextlib
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

import pytest
from helpers import Server, as_user

UNPRIVILEGED_USER = "nobody"


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


@contextlib.contextmanager
def unprivileged_server(*extra: str, wrapper: list[str] | None = None) -> Iterator[Server]:
    """A server started as UNPRIVILEGED_USER (skips the test where this host cannot)."""
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
    server = Server(home / "data", "--isolation", "auto", *extra, user=UNPRIVILEGED_USER, python=python, env=env,
                    wrapper=wrapper)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        except Exception:
            server.kill()
        shutil.rmtree(home, ignore_errors=True)
