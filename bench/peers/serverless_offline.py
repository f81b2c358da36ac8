"""serverless-offline (with Serverless Framework v3, which runs without an account) and a Python handler.

Installed with the machine's npm into `bench/.peers/` on first use. Invocations go to its
Lambda-compatible endpoint on its lambda port (`POST /2015-03-31/functions/<name>/invocations`),
so the same client code measures it and lambdastack. It runs each Python instance as
`python3 invoke.py` started through `/bin/sh` and reuses an idle instance; the `python3` it
finds on PATH is the real interpreter (a folder with a link to it goes first on PATH), so no
version-manager shim is timed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen, procmem
from bench.common import free_port
from bench.handlers import HANDLER, MODULE, NOOP, SLOW_INIT
from bench.loadgen import summary
from bench.peers.cache import PEERS_DIR, numpy_site, real_python
from bench.workload import Sizes, Skipped, Target

SERVERLESS_VERSION = "3.40.0"
OFFLINE_VERSION = "13.10.1"
SERVICE = "bench"
STAGE = "dev"


@dataclass
class Offline:
    """One running `serverless offline start`."""

    proc: subprocess.Popen[bytes]
    port: int
    folder: Path
    http_port: int = 0  # where its `httpApi` events are served (functions made with `http=True`)

    def name(self, function: str) -> str:
        return f"{SERVICE}-{STAGE}-{function}"

    def log(self) -> str:
        try:
            return (self.folder / "offline.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""


class ServerlessOffline(Target):
    name = "serverless-offline"

    def __init__(self) -> None:
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise Skipped("Node.js and npm are needed")
        self.home = PEERS_DIR / f"serverless-offline-{OFFLINE_VERSION}"
        self.cli = self.home / "node_modules" / "serverless" / "bin" / "serverless.js"
        if not (self.cli.is_file() and (self.home / "node_modules" / "serverless-offline").is_dir()):
            self._install()
        # A folder whose `python3` is the real interpreter, first on serverless-offline's PATH.
        self.bin = self.home / "bin"
        self.bin.mkdir(exist_ok=True)
        link = self.bin / "python3"
        if not link.is_symlink() or os.readlink(link) != real_python():
            link.unlink(missing_ok=True)
            link.symlink_to(real_python())

    def _install(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "package.json").write_text(json.dumps({"private": True, "name": "bench-peers"}))
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--no-save",
             f"serverless@{SERVERLESS_VERSION}", f"serverless-offline@{OFFLINE_VERSION}"],
            cwd=self.home, capture_output=True, text=True,
        )
        if done.returncode != 0 or not self.cli.is_file():
            raise Skipped(f"npm could not install serverless and serverless-offline: {done.stderr.strip()[-500:]}")

    def version(self) -> str:
        return f"serverless-offline {OFFLINE_VERSION}, serverless {SERVERLESS_VERSION}, node {_node_version()}"

    def http_function(self, source: str, library: Path | None = None) -> contextlib.AbstractContextManager[Offline]:
        """serverless offline with one function, `web`, behind an `httpApi` event at /web (`library`: a folder of
        packages it imports)."""
        return self._running({"web": source}, library=library, http=True)

    @contextlib.contextmanager
    def _running(self, functions: dict[str, str], library: Path | None = None, http: bool = False) -> Iterator[Offline]:
        """serverless offline with `functions` (name -> source of app.py); stopped, with its children, on exit.

        With `http`, each function is also behind an `httpApi` event (method `*`, path `/<name>`).
        """
        with tempfile.TemporaryDirectory(prefix="bench-sls-") as tmp:
            root = Path(tmp)
            port = free_port()
            http_port = free_port()
            lines = [
                f"service: {SERVICE}", "frameworkVersion: '3'",
                "provider:", "  name: aws", "  runtime: python3.11", "  region: us-east-1", f"  stage: {STAGE}",
                "plugins:", "  - serverless-offline",
                "custom:", "  serverless-offline:", f"    lambdaPort: {port}", f"    httpPort: {http_port}",
                f"    websocketPort: {free_port()}", f"    albPort: {free_port()}",
                "functions:",
            ]
            for name, source in functions.items():
                folder = root / name
                folder.mkdir()
                (folder / f"{MODULE}.py").write_text(source)
                lines += [f"  {name}:", f"    handler: {name}/{HANDLER}", "    timeout: 60"]
                if http:
                    lines += ["    events:", "      - httpApi:", "          method: '*'", f"          path: /{name}"]
            (root / "serverless.yml").write_text("\n".join(lines) + "\n")
            (root / "node_modules").symlink_to(self.home / "node_modules")
            env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
            env.update(PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}", SLS_TELEMETRY_DISABLED="1",
                       SLS_NOTIFICATIONS_MODE="off", SLS_DEPRECATION_DISABLE="*", SLS_INTERACTIVE_SETUP_DISABLE="1")
            if library is not None:
                env["PYTHONPATH"] = str(library)
            with open(root / "offline.log", "wb") as log:
                proc = subprocess.Popen(["node", str(self.cli), "offline", "start"], cwd=root, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            offline = Offline(proc, port, root, http_port)
            try:
                _wait_listening(offline)
                yield offline
            finally:
                _stop(proc)

    def cold(self, sizes: Sizes) -> dict[str, Any]:
        """The first invocation of each of N functions: each starts a new instance (a new Python process)."""
        names = [f"cold{i}" for i in range(sizes.cold)]
        with self._running(dict.fromkeys(names, NOOP)) as offline:
            times = []
            for name in names:
                time.sleep(sizes.cold_gap)
                times.append(loadgen.first_invocation_ms(offline.port, offline.name(name)))
        return summary(times)

    def snapstart(self, sizes: Sizes) -> dict[str, Any]:
        """No snapshots: a new instance of a function with a slow init pays the whole init."""
        names = [f"slow{i}" for i in range(sizes.snapstart_peers)]
        with self._running(dict.fromkeys(names, SLOW_INIT), numpy_site()) as offline:
            times = []
            for name in names:
                time.sleep(sizes.cold_gap)
                times.append(loadgen.first_invocation_ms(offline.port, offline.name(name)))
        return summary(times)

    def warm(self, sizes: Sizes) -> dict[str, Any]:
        with self._running({"noop": NOOP}) as offline:
            return loadgen.sequential(offline.port, offline.name("noop"), sizes.warm, sizes.warmup)

    def throughput(self, sizes: Sizes) -> dict[str, Any]:
        with self._running({"noop": NOOP}) as offline:
            return loadgen.concurrent(offline.port, offline.name("noop"), sizes.clients, sizes.seconds,
                                      sizes.wrk_threads)

    def idle(self, sizes: Sizes) -> dict[str, Any]:
        """N functions invoked once each: N idle instances (a shell and a Python process each) under node."""
        names = [f"idle{i}" for i in range(sizes.idle_peer)]
        with self._running(dict.fromkeys(names, NOOP)) as offline:
            for name in names:
                loadgen.first_invocation_ms(offline.port, offline.name(name))
            time.sleep(2)
            server = procmem.usage_of(offline.proc.pid)
            instances = procmem.usage_of_all(procmem.descendants(offline.proc.pid))
        per_instance = instances.pss_mb / len(names)
        return {
            "environments": len(names), "environments_pss_mb": instances.pss_mb, "processes": instances.processes,
            "mb_per_environment": per_instance, "server_pss_mb": server.pss_mb, "server_rss_mb": server.rss_mb,
            "environments_in_24gb": int((24 * 1024 - server.pss_mb) / per_instance),
        }

    def server(self, sizes: Sizes) -> dict[str, Any]:
        with self._running({"noop": NOOP}) as offline:
            time.sleep(2)
            own = procmem.usage_of(offline.proc.pid)
        return {"pss_mb": own.pss_mb, "rss_mb": own.rss_mb}


def _node_version() -> str:
    done = subprocess.run(["node", "--version"], capture_output=True, text=True)
    return done.stdout.strip()


def _wait_listening(offline: Offline, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if offline.proc.poll() is not None:
            raise RuntimeError(f"serverless offline exited with {offline.proc.returncode}:\n{offline.log()}")
        try:
            with socket.create_connection(("127.0.0.1", offline.port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"serverless offline did not listen on {offline.port}:\n{offline.log()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its whole process group (node, the shells and Python instances), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The group may outlive its leader: make sure its children are gone too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
