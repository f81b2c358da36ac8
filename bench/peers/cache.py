"""`bench/.peers/`: what the comparison installs on first use (peers, numpy), and the real interpreter.

Everything is installed with the machine's own clients (npm, pip) from their registries and
kept between runs; delete the folder to start over.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.workload import Skipped

PEERS_DIR = Path(__file__).resolve().parent.parent / ".peers"
NUMPY_REQUIREMENT = "numpy>=1.26,<3"


def real_python() -> str:
    """The interpreter binary behind this one, never a venv wrapper or a version-manager shim.

    A pyenv shim is a shell script that costs 60-90 ms per start; every process-per-invocation
    figure would be mostly that.
    """
    candidate = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    with open(candidate, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise Skipped(f"{candidate} is not an interpreter binary (a shim?)")
    return candidate


def python_tag(version: tuple[int, int] | None = None) -> str:
    major, minor = version or sys.version_info[:2]
    return f"py{major}{minor}"


def numpy_site(version: tuple[int, int] | None = None) -> Path:
    """A folder holding numpy for Python `version` (default: this one's), installed on first use."""
    target = PEERS_DIR / f"numpy-{python_tag(version)}"
    site = target / "python"
    if not (site / "numpy" / "__init__.py").is_file():
        site.mkdir(parents=True, exist_ok=True)
        wanted = ["--python-version", f"{version[0]}.{version[1]}"] if version else []
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
             "--only-binary=:all:", *wanted, "--target", str(site), NUMPY_REQUIREMENT],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise Skipped(f"could not install numpy: {done.stderr.strip()[-500:]}")
    return site


def numpy_layer_zip(version: tuple[int, int] | None = None) -> Path:
    """numpy as a Lambda layer zip (`python/numpy/...`, which Python runtimes find on /opt/python)."""
    site = numpy_site(version)
    path = site.parent / "layer.zip"
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for file in sorted(site.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    z.write(file, file.relative_to(site.parent).as_posix())
        tmp.rename(path)
    return path


def numpy_version(version: tuple[int, int] | None = None) -> str:
    found = sorted(numpy_site(version).glob("numpy-*.dist-info"))
    return found[0].name.removeprefix("numpy-").removesuffix(".dist-info") if found else "?"
