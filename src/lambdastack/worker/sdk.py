"""The AWS SDK for Python that every Python runtime finds in /var/runtime, as on Lambda.

Lambda's Python runtimes ship boto3 and botocore (and snapshot_restore_py). lambdastack mounts the server's own
copies read-only when they support the runtime's interpreter. When they do not (the
newest SDK has dropped an old Python), the newest SDK that does is installed once, with
that interpreter's own pip, into a cache shared by every lambdastack server of the user.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from lambdastack.worker.runtimes import PythonInterpreter

log = logging.getLogger("lambdastack.worker")

# The SDK, and the SnapStart runtime hooks library that Lambda's Python runtimes also ship.
MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six", "snapshot_restore_py")
DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six",
                 "snapshot-restore-py")
COMPLETE = ".complete-2"  # marks a finished install (the number changes when what is installed does)
INSTALL_TIMEOUT_S = 300


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lambdastack" / "sdk"


def _supports(version: tuple[int, int], distribution: str) -> bool:
    try:
        requires = importlib.metadata.metadata(distribution)["Requires-Python"]
    except importlib.metadata.PackageNotFoundError:
        return False
    if not requires:
        return True
    try:
        return SpecifierSet(requires).contains(f"{version[0]}.{version[1]}.0", prereleases=True)
    except InvalidSpecifier:
        return True


def server_sdk_supports(version: tuple[int, int]) -> bool:
    return all(_supports(version, d) for d in DISTRIBUTIONS)


def server_sdk_binds() -> list[tuple[str, str]]:
    """The server's own SDK packages, as (host path, path inside the environment)."""
    binds: list[tuple[str, str]] = []
    for module in MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        if spec.submodule_search_locations:
            path = next(iter(spec.submodule_search_locations))
        else:
            path = spec.origin
        binds.append((path, f"/var/runtime/{os.path.basename(path)}"))
    return binds


def _installed_binds(folder: Path) -> list[tuple[str, str]]:
    return [
        (str(entry), f"/var/runtime/{entry.name}")
        for entry in sorted(folder.iterdir())
        if entry.name in MODULES or entry.name in {m + ".py" for m in MODULES}
    ]


def _install(interpreter: PythonInterpreter, root: Path) -> Path | None:
    target = root / interpreter.runtime
    if (target / COMPLETE).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{interpreter.runtime}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another server may be installing the same SDK
        if (target / COMPLETE).exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{interpreter.runtime}-", dir=root))
        try:
            log.info("installing the AWS SDK for %s (the server's copy does not support it)", interpreter.runtime)
            subprocess.run(
                [str(interpreter.executable), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-input", "--no-warn-script-location", "--target", str(staging), "boto3", "snapshot-restore-py"],
                check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                timeout=INSTALL_TIMEOUT_S,
            )
            (staging / COMPLETE).touch()
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            return target
        except (OSError, subprocess.SubprocessError) as e:
            detail = getattr(e, "stderr", b"") or b""
            log.warning("could not install the AWS SDK for %s: %s %s", interpreter.runtime, e,
                        detail.decode(errors="replace")[-500:])
            shutil.rmtree(staging, ignore_errors=True)
            return None


def sdk_binds(interpreter: PythonInterpreter, root: Path | None = None) -> list[tuple[str, str]]:
    """What to mount under /var/runtime for this interpreter. May take seconds (a pip install) once."""
    if server_sdk_supports(interpreter.version):
        return server_sdk_binds()
    installed = _install(interpreter, root or cache_root())
    if installed is None:
        return server_sdk_binds()  # better than nothing: functions that do not import boto3 still run
    return _installed_binds(installed)


def runtime_package_binds() -> list[tuple[str, str]]:
    """lambdastack's own Python runtime, under /var/runtime, for runtimes started by exec."""
    package = Path(__file__).resolve().parent.parent
    return [
        (str(package / "__init__.py"), "/var/runtime/lambdastack/__init__.py"),
        (str(package / "runtime"), "/var/runtime/lambdastack/runtime"),
    ]
