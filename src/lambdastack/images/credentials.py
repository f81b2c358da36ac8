"""Registry credentials, from the files `docker login`, `podman login` and `skopeo login` write.

Looked up on every pull (a login after the server started counts), in this order:
`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` and
`$XDG_RUNTIME_DIR/containers/auth.json`; the first file that names the registry wins.
Each holds `{"auths": {"<registry>": {"auth": base64("user:password")}}}` (or `username`
and `password`). Credential helpers (`credsStore`, `credHelpers`) are not consulted.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("lambdastack.images")

_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def auth_files(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("DOCKER_CONFIG"):
        files.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    files.append(Path(env.get("HOME") or Path.home()) / ".docker" / "config.json")
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    return files


def _registry_key(key: str) -> str:
    """`https://index.docker.io/v1/` -> `index.docker.io`; `127.0.0.1:5000` stays."""
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0].lower()


def _entry(value: object) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return None
    if value.get("auth"):
        try:
            user, _, password = base64.b64decode(str(value["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user, password
    if value.get("username"):
        return str(value["username"]), str(value.get("password") or "")
    return None


def lookup(registry: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) for `registry` (as written in the image reference), or None."""
    wanted = {registry.lower()}
    if registry.lower() in _DOCKER_HUB:
        wanted = set(_DOCKER_HUB)
    for path in auth_files(env):
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            log.warning("ignoring registry credentials in %s: %s", path, e)
            continue
        auths = document.get("auths") if isinstance(document, dict) else None
        if not isinstance(auths, dict):
            continue
        for key, value in auths.items():
            if _registry_key(key) in wanted:
                found = _entry(value)
                if found is not None:
                    return found
    return None
