"""Where a function finds its layers when nothing can be mounted (process isolation).

In an isolated environment the layers are mounted, merged, at /opt. A plain process has
no mount namespace of its own: /opt is the host's. The search paths Lambda points into
/opt are pointed into the layers' own directories instead, later layers first (a later
layer wins, as it does when merged): `PATH` gets each layer's `bin`, `LD_LIBRARY_PATH` its
`lib`, `PYTHONPATH` its `python` directories. These reach the programs a function starts,
and custom runtimes; the built-in Python runtime is forked from a running interpreter, so
its own imports from layers, and any path a function spells out as `/opt/...`, need the
isolated levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def _prepend(current: str | None, folders: list[str]) -> str:
    return ":".join([*folders, *([current] if current else [])])


def layer_paths_without_mounts(variables: Mapping[str, str], opt_dirs: Sequence[Path]) -> dict[str, str]:
    """The search-path variables of `variables`, with the layers' directories in front."""
    if not opt_dirs:
        return {}
    top_first = [str(d) for d in reversed(opt_dirs)]
    python = [f"{d}/python" for d in top_first]
    return {
        "PATH": _prepend(variables.get("PATH"), [f"{d}/bin" for d in top_first]),
        "LD_LIBRARY_PATH": _prepend(variables.get("LD_LIBRARY_PATH"), [f"{d}/lib" for d in top_first]),
        "PYTHONPATH": _prepend(variables.get("PYTHONPATH"), python),
    }

