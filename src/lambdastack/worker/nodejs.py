"""The Node.js runtimes this host can run: `nodejs<major>.x` for each Node.js found on it.

Inside an environment, as on Lambda, the interpreter is `/var/lang/bin/node` and the
runtime client lives in `/var/runtime` (lambdastack's own, `runtime/nodejs/`); both are
mounted read-only from the host. Binaries are resolved to their real files: a version
manager's shim must never be on the path of an environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MIN_MAJOR = 18  # the oldest Node.js Lambda still lets functions be created with

NODE_INSIDE = "/var/lang/bin/node"
RUNTIME_DIR_INSIDE = "/var/runtime"
ENTRY_POINT = RUNTIME_DIR_INSIDE + "/index.mjs"

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class NodeRuntime:
    runtime: str  # e.g. "nodejs20.x"
    executable: Path  # the real binary on the host
    version: tuple[int, int, int]

    def binds(self) -> list[tuple[str, str]]:
        """What the runtime's zygote mounts into the base root: (host path, path inside)."""
        return [(str(self.executable), NODE_INSIDE), (str(client_dir()), RUNTIME_DIR_INSIDE)]


def client_dir() -> Path:
    """lambdastack's Node.js runtime client (JavaScript shipped as package data)."""
    return Path(__file__).resolve().parent.parent / "runtime" / "nodejs"


def _candidates() -> list[str]:
    found = [shutil.which("node"), shutil.which("nodejs")]
    found += ["/usr/local/bin/node", "/usr/bin/node", "/usr/bin/nodejs"]
    return [p for p in dict.fromkeys(found) if p]


def _is_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _version(executable: Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=15,
                             stdin=subprocess.DEVNULL, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.match(out.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def discover_nodes() -> dict[str, NodeRuntime]:
    """runtime name -> Node.js; the first found of each major version wins (PATH first)."""
    result: dict[str, NodeRuntime] = {}
    seen: set[Path] = set()
    for candidate in _candidates():
        real = Path(os.path.realpath(candidate))
        if real in seen or not real.is_file() or not os.access(real, os.X_OK) or not _is_binary(real):
            continue
        seen.add(real)
        version = _version(real)
        if version is None or version[0] < MIN_MAJOR:
            continue
        name = f"nodejs{version[0]}.x"
        result.setdefault(name, NodeRuntime(name, real, version))
    return dict(sorted(result.items(), key=lambda kv: kv[1].version))


def node_argv(memory_mb: int, environment: dict[str, str]) -> tuple[str, ...]:
    """The runtime's command line, with V8's heap sized to the function's memory as Lambda does.

    A function that sizes the heap itself in NODE_OPTIONS keeps its own setting.
    """
    argv = [NODE_INSIDE, "--expose-gc", "--max-http-header-size=81920"]
    options = environment.get("NODE_OPTIONS", "")
    if not any(flag in options for flag in ("semi_space", "semi-space", "old_space", "old-space")):
        new_space = memory_mb // 10
        argv += [f"--max-semi-space-size={max(1, new_space // 2)}", f"--max-old-space-size={memory_mb - new_space}"]
    return (*argv, ENTRY_POINT)
