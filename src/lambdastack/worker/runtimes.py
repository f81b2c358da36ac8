"""The runtimes this host can run, found on the machine itself.

A `python3.X` runtime exists for each CPython 3.9+ interpreter found on the host (the one
lambdastack runs on first). Interpreters are resolved to their real binaries: a
version-manager shim costs tens of milliseconds per start and must never be on the path
of an environment.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_PYTHON = (3, 9)


@dataclass(frozen=True)
class PythonInterpreter:
    runtime: str  # e.g. "python3.11"
    executable: Path  # the real binary, never a shim
    version: tuple[int, int]


def _server_interpreter() -> PythonInterpreter:
    base = getattr(sys, "_base_executable", None) or sys.executable
    real = Path(os.path.realpath(base))
    version = sys.version_info[:2]
    return PythonInterpreter(f"python{version[0]}.{version[1]}", real, (version[0], version[1]))


def _candidates() -> list[Path]:
    roots = [os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")), "/root/.pyenv"]
    found: list[str] = []
    for root in dict.fromkeys(roots):
        found += glob.glob(os.path.join(root, "versions", "*", "bin", "python3.*"))
    for folder in ("/usr/local/bin", "/usr/bin", "/opt/python/bin"):
        found += glob.glob(os.path.join(folder, "python3.*"))
    return [Path(p) for p in sorted(found)]


_NAME = re.compile(r"python(3)\.(\d+)$")


def discover_pythons() -> dict[str, PythonInterpreter]:
    """runtime name -> interpreter; the server's own interpreter wins for its version."""
    own = _server_interpreter()
    result: dict[str, PythonInterpreter] = {own.runtime: own}
    for path in _candidates():
        m = _NAME.match(path.name)
        if not m or not os.access(path, os.X_OK):
            continue
        version = (int(m.group(1)), int(m.group(2)))
        if version < MIN_PYTHON:
            continue
        real = Path(os.path.realpath(path))
        if "shims" in real.parts or not real.is_file():
            continue
        name = f"python{version[0]}.{version[1]}"
        result.setdefault(name, PythonInterpreter(name, real, version))
    return dict(sorted(result.items(), key=lambda kv: kv[1].version))


def server_python() -> PythonInterpreter:
    return _server_interpreter()
