"""Paths inside a root filesystem that lives in a host directory.

A symbolic link in an image means what it means inside the container: an absolute target
starts again at the image's root, and `..` stops there. Resolving links that way (as
`securejoin` does for runc and containerd) turns every path of the image into a host path
under the root, whatever the links in the image say; nothing can point out of it.
"""

from __future__ import annotations

import errno
import os

MAX_LINKS = 40


def split(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve_in_root(root: str, path: str, *, follow_final: bool = True) -> str:
    """The host path of `path` as the container sees it (its links resolved within `root`).

    Components that do not exist are taken as they are, so the result can be created.
    """
    pending = split(path)
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if (pending or follow_final) and os.path.islink(candidate):
            links += 1
            if links > MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = split(target) + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
