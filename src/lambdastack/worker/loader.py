"""When a Python runtime must start as a fresh process rather than be forked from the zygote.

The dynamic loader reads LD_LIBRARY_PATH once, when a process starts, and remembers the
directories that did not exist then. A runtime forked from the zygote never started inside
the environment, so shared libraries that Lambda finds there (/var/task, /var/task/lib,
/opt/lib, or a function's own LD_LIBRARY_PATH) would not be found. Functions that ship
shared libraries, or wrap their runtime (AWS_LAMBDA_EXEC_WRAPPER), get their runtime
started by exec inside the environment, exactly as Lambda starts it; every other function
keeps the fork, which is much cheaper.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path


def _has_shared_libraries(folder: Path) -> bool:
    try:
        return any(".so" in name for name in os.listdir(folder))
    except OSError:
        return False


def needs_fresh_process(code_dir: Path | None, opt_dirs: Iterable[Path], environment: Mapping[str, str]) -> bool:
    if "LD_LIBRARY_PATH" in environment or "AWS_LAMBDA_EXEC_WRAPPER" in environment:
        return True
    folders = [code_dir, code_dir / "lib"] if code_dir is not None else []
    folders += [Path(d) / "lib" for d in opt_dirs]
    return any(_has_shared_libraries(f) for f in folders)


def python_argv(interpreter: Path, environment: Mapping[str, str]) -> tuple[str, ...]:
    """The command Lambda's Python runtime starts with (behind the function's wrapper, if any)."""
    argv: tuple[str, ...] = (str(interpreter), "-B", "-m", "lambdastack.runtime.python.bootstrap")
    wrapper = environment.get("AWS_LAMBDA_EXEC_WRAPPER")
    return (wrapper, *argv) if wrapper else argv
