"""How an environment of a container-image function starts: root, command, directory, variables.

As Lambda (and Docker) do: the command is ENTRYPOINT followed by CMD, each replaced by the
function's ImageConfig when it sets it; a command without a `/` is looked for on the
image's PATH inside the image; the working directory is ImageConfig.WorkingDirectory, else
the image's WORKDIR, else `/`; the image's ENV is the base the function's variables (and
Lambda's own) go over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdastack import errors
from lambdastack.images.paths import resolve_in_root
from lambdastack.images.store import PulledImage

DEFAULT_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"


@dataclass(frozen=True)
class ImageLaunch:
    root: Path
    argv: tuple[str, ...]  # ("",) when the image says nothing about how to start
    cwd: str
    environment: dict[str, str]


def image_launch(config: dict[str, Any], root_path: Callable[[str], Path]) -> ImageLaunch:
    kept = (config.get("Image") or {}).get("Resolved")
    if not isinstance(kept, dict):
        raise errors.ResourceConflict(
            "The operation cannot be performed at this time. The function's image is not ready yet."
        )
    image = PulledImage.from_config(kept)
    root = root_path(image.root_id)
    overrides = (config.get("ImageConfigResponse") or {}).get("ImageConfig") or {}
    entrypoint = list(overrides["EntryPoint"]) if "EntryPoint" in overrides else image.entrypoint
    command = list(overrides["Command"]) if "Command" in overrides else image.cmd
    environment = image_environment(image.env)
    argv = [*entrypoint, *command] or [""]
    if argv[0] and "/" not in argv[0]:
        argv[0] = on_path(root, argv[0], environment.get("PATH") or DEFAULT_PATH)
    cwd = overrides.get("WorkingDirectory") or image.working_dir or "/"
    return ImageLaunch(root, tuple(argv), cwd, environment)


def image_environment(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if name and sep:
            out[name] = value
    return out


def on_path(root: Path, program: str, path: str) -> str:
    """Where `program` is on `path` inside the image (as the container sees it), else `program`."""
    for folder in path.split(":"):
        if not folder.startswith("/"):
            continue
        inside = folder.rstrip("/") + "/" + program
        host = Path(resolve_in_root(str(root), inside))
        if host.is_file() and host.stat().st_mode & 0o111:
            return inside
    return program
