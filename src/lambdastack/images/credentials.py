"""Registry credentials, from the files `docker login`, `podman login` and `skopeo login` write.

Looked up on every pull (a login after the server started counts), in this order:
`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` and
`$XDG_RUNTIME_DIR/containers/auth.json`; the first file that names the registry wins.
Each holds `{"auths": {"<registry>": {"auth": base64("user:password")}}}` (or `username`
and `password`), or names credential helpers as `docker login` leaves them: `credHelpers`
(`{"<registry>": "<name>"}`) and `credsStore` (`"<name>"`, for every registry). A helper is
the program `docker-credential-<name>` on the server's PATH, run as `... get` with the
registry on its standard input; it prints `{"Username": ..., "Secret": ...}` (the protocol
of docker-credential-helpers). In one file, a registry's own helper comes first, then its
entry in `auths`, then the store.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import subprocess
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


HELPER_TIMEOUT_S = 10.0


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
        if not isinstance(document, dict):
            continue
        found = _from_file(document, registry, wanted, env)
        if found is not None:
            return found
    return None


def _from_file(document: dict[str, object], registry: str, wanted: set[str],
               env: Mapping[str, str] | None) -> tuple[str, str] | None:
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _registry_key(key) in wanted and isinstance(name, str):
                return from_helper(name, registry, env)
    auths = document.get("auths")
    if isinstance(auths, dict):
        for key, value in auths.items():
            if _registry_key(key) in wanted:
                found = _entry(value)
                if found is not None:
                    return found
    store = document.get("credsStore")
    if isinstance(store, str) and store:
        return from_helper(store, registry, env)
    return None


def from_helper(name: str, registry: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """Ask `docker-credential-<name> get` for `registry`'s credentials; None if it has none."""
    environ = dict(os.environ if env is None else env)
    program = shutil.which(f"docker-credential-{name}", path=environ.get("PATH"))
    if program is None:
        log.warning("credential helper docker-credential-%s is not on PATH", name)
        return None
    server = "https://index.docker.io/v1/" if registry.lower() in _DOCKER_HUB else registry
    try:
        done = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=HELPER_TIMEOUT_S, env=environ, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("credential helper %s failed: %s", program, e)
        return None
    if done.returncode != 0:  # "credentials not found in native keychain", or a failure
        log.info("credential helper %s has nothing for %s: %s", program, registry,
                 done.stdout.decode(errors="replace").strip() or done.stderr.decode(errors="replace").strip())
        return None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        log.warning("credential helper %s printed no JSON", program)
        return None
    if not isinstance(answer, dict) or not answer.get("Username"):
        return None
    return str(answer["Username"]), str(answer.get("Secret") or "")
