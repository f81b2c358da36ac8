"""Peers that start a new process for every invocation: python-lambda-local, and a plain `python3` baseline.

Every invocation is a cold start (interpreter start, handler import, call, exit) and nothing
stays warm between them, so they have no warm round trip and hold no idle environments.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.handlers import FUNCTION, HANDLER, MODULE, NOOP, SLOW_INIT
from bench.loadgen import EVENT, summary
from bench.peers.cache import PEERS_DIR, numpy_site, python_tag, real_python
from bench.workload import Sizes, Skipped, Target

LAMBDA_LOCAL_VERSION = "0.1.13"

# The baseline's whole runtime: import the handler, call it with the event, print the answer.
RUNNER = """import importlib, json, sys
sys.path.insert(0, sys.argv[1])
module, _, name = sys.argv[2].rpartition(".")
print(json.dumps(getattr(importlib.import_module(module), name)(json.loads(sys.argv[3]), None)))
"""


class ProcessPerInvocation(Target):
    """Runs one command per invocation in a folder holding the handler (`app.py`) and the event."""

    def command(self, folder: Path, library: Path | None) -> list[str]:
        raise NotImplementedError

    def environment(self, library: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        return env

    def _prepare(self, folder: Path, source: str) -> None:
        (folder / f"{MODULE}.py").write_text(source)
        (folder / "event.json").write_bytes(EVENT)

    def _invoke_ms(self, argv: list[str], env: dict[str, str], folder: Path, expect: str) -> float:
        t0 = time.perf_counter()
        done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        elapsed = (time.perf_counter() - t0) * 1000
        if done.returncode != 0 or expect not in done.stdout:
            raise RuntimeError(f"{self.name} failed ({done.returncode}): {done.stdout[-300:]} {done.stderr[-300:]}")
        return elapsed

    def _sequential(self, source: str, n: int, gap: float, library: Path | None, expect: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
            folder = Path(tmp)
            self._prepare(folder, source)
            argv, env = self.command(folder, library), self.environment(library)
            times = []
            for _ in range(n):
                time.sleep(gap)
                times.append(self._invoke_ms(argv, env, folder, expect))
        return summary(times)

    def cold(self, sizes: Sizes) -> dict[str, Any]:
        return self._sequential(NOOP, sizes.cold, sizes.cold_gap, None, "ping")

    def snapstart(self, sizes: Sizes) -> dict[str, Any]:
        return self._sequential(SLOW_INIT, sizes.snapstart_peers, sizes.cold_gap, numpy_site(), "numpy")

    def warm(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("nothing stays warm: every invocation starts a new process")

    def throughput(self, sizes: Sizes) -> dict[str, Any]:
        """`clients` threads, each starting one process after another for `seconds`."""
        with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
            folder = Path(tmp)
            self._prepare(folder, NOOP)
            argv, env = self.command(folder, None), self.environment(None)
            latencies: list[float] = []
            failures: list[BaseException] = []
            start = time.monotonic()
            deadline = start + sizes.seconds

            def client() -> None:
                while time.monotonic() < deadline and not failures:
                    try:
                        latencies.append(self._invoke_ms(argv, env, folder, "ping"))
                    except BaseException as e:  # reported below, from the main thread
                        failures.append(e)

            threads = [threading.Thread(target=client, daemon=True) for _ in range(sizes.clients)]
            for t in threads:
                t.start()
            try:
                for t in threads:
                    t.join()
            finally:  # interrupted: no client starts another process
                deadline = 0.0
            elapsed = time.monotonic() - start
        if failures:
            raise failures[0]
        figures = summary(latencies)
        return {
            "generator": f"{sizes.clients} threads starting processes", "clients": sizes.clients,
            "seconds": elapsed, "requests": len(latencies), "failed": 0, "invokes_per_s": len(latencies) / elapsed,
            "latency_p50_ms": figures["p50"], "latency_p99_ms": figures["p99"],
        }

    def idle(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("keeps nothing warm between invocations")

    def server(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("no server process")


class FreshPython(ProcessPerInvocation):
    """The real interpreter binary started for each invocation: import the handler, call it, exit."""

    name = "python3-process"

    def __init__(self) -> None:
        self.python = real_python()
        self.runner = PEERS_DIR / "runner.py"

    def version(self) -> str:
        return self.python

    def command(self, folder: Path, library: Path | None) -> list[str]:
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        if not self.runner.is_file() or self.runner.read_text() != RUNNER:
            self.runner.write_text(RUNNER)
        return [self.python, str(self.runner), str(folder), HANDLER, json.dumps(json.loads(EVENT))]

    def environment(self, library: Path | None) -> dict[str, str]:
        env = super().environment(library)
        if library is not None:
            env["PYTHONPATH"] = str(library)
        return env


class LambdaLocal(ProcessPerInvocation):
    """python-lambda-local from PyPI, in a virtual environment of its own on the real interpreter."""

    name = "python-lambda-local"

    def __init__(self) -> None:
        self.venv = PEERS_DIR / f"python-lambda-local-{LAMBDA_LOCAL_VERSION}-{python_tag()}"
        self.cli = self.venv / "bin" / "python-lambda-local"
        if not self.cli.is_file():
            self._install()

    def _install(self) -> None:
        subprocess.run([real_python(), "-m", "venv", "--clear", str(self.venv)], check=True, capture_output=True)
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"python-lambda-local=={LAMBDA_LOCAL_VERSION}"],
            capture_output=True, text=True,
        )
        if done.returncode != 0 or not self.cli.is_file():
            raise Skipped(f"could not install python-lambda-local: {done.stderr.strip()[-500:]}")

    def version(self) -> str:
        return LAMBDA_LOCAL_VERSION

    def command(self, folder: Path, library: Path | None) -> list[str]:
        argv = [str(self.cli), "-f", FUNCTION, "-t", "60"]
        if library is not None:
            argv += ["-l", str(library)]
        return [*argv, str(folder / f"{MODULE}.py"), str(folder / "event.json")]
