"""The program an environment starts, and why it might not start (Runtime.InvalidEntrypoint).

A custom runtime's entry point is an executable `bootstrap` at the root of the function's
code or of a layer (`/var/task/bootstrap`, then `/opt/bootstrap`). When it is missing, not
executable or not a program, Lambda fails the init without starting anything and says why
in Go's words (`fork/exec /var/task/bootstrap: permission denied`); lambdastack checks the
same on the host, where the code is unpacked, before it forks an environment.
"""

from __future__ import annotations

import platform
import struct
from collections.abc import Sequence
from pathlib import Path

from lambdastack.images.paths import resolve_in_root
from lambdastack.worker.spec import EnvironmentSpec

INVALID_ENTRYPOINT = "Runtime.InvalidEntrypoint"
BOOTSTRAP_CANDIDATES = ("/var/task/bootstrap", "/opt/bootstrap")
NOT_FOUND = f"Couldn't find valid bootstrap(s): [{' '.join(BOOTSTRAP_CANDIDATES)}]"

_ELF_MACHINES = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}


def bootstrap_path(code_dir: Path | None, opt_dir: Path | None) -> str:
    """Where a custom runtime's bootstrap is inside the environment (the first that exists)."""
    for inside, folder in zip(BOOTSTRAP_CANDIDATES, (code_dir, opt_dir), strict=True):
        if folder is not None and (folder / "bootstrap").is_file():
            return inside
    return BOOTSTRAP_CANDIDATES[0]


def _on_host(spec: EnvironmentSpec, inside: str) -> Path | None:
    """The host file behind a path in the function's code (/var/task) or layers (/opt)."""
    if inside.startswith("/var/task/"):
        return spec.code_dir / inside[len("/var/task/"):] if spec.code_dir is not None else None
    if inside.startswith("/opt/"):
        relative = inside[len("/opt/"):]
        in_layers = getattr(spec, "opt_path", None)  # merged layers: the last one that has the file
        if in_layers is not None:
            found: Path | None = in_layers(relative)
            return found
        folder = getattr(spec, "opt_dir", None)
        return folder / relative if folder is not None else None
    return None


def _runs_here(head: bytes) -> bool:
    """Whether the kernel would execute a file starting with `head` on this machine."""
    if head.startswith(b"#!"):
        return True
    if head[:4] != b"\x7fELF" or len(head) < 20:
        return False
    endian = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", head, 18)
    expected = _ELF_MACHINES.get(platform.machine().lower())
    return expected is None or machine == expected


def entrypoint_problem(spec: EnvironmentSpec) -> str | None:
    """Why the environment's program (in the function's code, layers or image) cannot start; None if it can."""
    if spec.root is not None:
        return _image_entrypoint_problem(spec, spec.root)
    if not spec.argv:
        return None
    program = spec.argv[0]
    host = _on_host(spec, program)
    if host is None or host.is_symlink():
        return None  # outside the code, or a link only the environment's root resolves
    if not host.exists():
        return NOT_FOUND if program in BOOTSTRAP_CANDIDATES else f"fork/exec {program}: no such file or directory"
    if host.is_dir() or not host.stat().st_mode & 0o111:
        return f"fork/exec {program}: permission denied"
    try:
        with open(host, "rb") as f:
            head = f.read(64)
    except OSError:
        return f"fork/exec {program}: permission denied"
    return None if _runs_here(head) else f"fork/exec {program}: exec format error"


def _image_entrypoint_problem(spec: EnvironmentSpec, root: Path) -> str | None:
    """The same checks for a container image's ENTRYPOINT/CMD, inside the image's root."""
    program = spec.argv[0] if spec.argv else ""
    if not program:
        return "Couldn't find valid entrypoint: the image has no ENTRYPOINT or CMD"
    if not program.startswith("/"):
        return f'exec: "{program}": executable file not found in $PATH'
    host = Path(resolve_in_root(str(root), program))
    if not host.exists():
        return f"fork/exec {program}: no such file or directory"
    if host.is_dir() or not host.stat().st_mode & 0o111:
        return f"fork/exec {program}: permission denied"
    try:
        with open(host, "rb") as f:
            head = f.read(64)
    except OSError:
        return f"fork/exec {program}: permission denied"
    return None if _runs_here(head) else f"fork/exec {program}: exec format error"


def host_argv(spec: EnvironmentSpec, binds: Sequence[tuple[str, str]]) -> list[str]:
    """The command line for an environment without a root of its own (process isolation).

    Paths that only exist inside an environment (the runtime's mounts, /var/task, /opt) are
    replaced by the host paths behind them.
    """
    argv: list[str] = []
    for arg in spec.argv or ():
        for host, inside in binds:
            if arg == inside or arg.startswith(inside + "/"):
                argv.append(host + arg[len(inside):])
                break
        else:
            found = _on_host(spec, arg)
            argv.append(str(found) if found is not None else arg)
    return argv
