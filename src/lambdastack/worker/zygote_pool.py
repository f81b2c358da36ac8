"""Which zygote forks a function's environments: one per Python runtime, one per runtime that
starts a program of its own (Node.js), and one for the rest (custom runtimes, images); each
started on first use and kept."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdastack.worker import java
from lambdastack.worker.environment import EnvironmentStartError
from lambdastack.worker.runtimes import PythonInterpreter
from lambdastack.worker.sdk import runtime_package_binds, sdk_binds
from lambdastack.worker.spec import EnvironmentSpec
from lambdastack.worker.zygotes import ZygoteClient, ZygoteError

log = logging.getLogger("lambdastack.worker")


class Zygotes:
    def __init__(
        self, isolation: str, data_dir: Path, runtimes: dict[str, PythonInterpreter], exec_python: Path | None,
        exec_binds: dict[str, list[tuple[str, str]]], etc_files: Callable[[], dict[str, str]] | None,
        on_started: Callable[[ZygoteClient], None],
    ) -> None:
        self.isolation = isolation
        self.data_dir = data_dir
        self.runtimes = runtimes
        self.exec_python = exec_python
        self.exec_binds = exec_binds
        self.etc_files = etc_files  # the network's /etc files for every root, if it has some
        self.on_started = on_started
        self._running: dict[str, ZygoteClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def name_for(self, spec: EnvironmentSpec) -> str:
        if spec.runtime.startswith("python") and spec.argv is None:
            return spec.runtime
        return spec.runtime if spec.runtime in self.exec_binds and spec.root is None else "exec"

    def get(self, name: str) -> ZygoteClient:
        return self._running[name]

    async def for_spec(self, spec: EnvironmentSpec) -> ZygoteClient:
        name = self.name_for(spec)
        zygote = self._running.get(name)
        if zygote is not None and zygote.alive:
            return zygote
        async with self._locks.setdefault(name, asyncio.Lock()):
            zygote = self._running.get(name)
            if zygote is not None and zygote.alive:
                return zygote
            executable, config = await self._config(spec, name)
            zygote = ZygoteClient(name, executable, config)
            try:
                info = await zygote.start()
            except ZygoteError as e:
                raise EnvironmentStartError(str(e))
            log.info("zygote %s ready: %s", name, info)
            self._running[name] = zygote
            self.on_started(zygote)
            return zygote

    def close(self) -> None:
        for zygote in self._running.values():
            zygote.close()
        self._running.clear()

    async def _config(self, spec: EnvironmentSpec, name: str) -> tuple[Path, dict[str, Any]]:
        if spec.runtime.startswith("python") and spec.argv is None:
            interpreter = self.runtimes.get(spec.runtime)
            if interpreter is None:
                raise EnvironmentStartError(f"runtime {spec.runtime} is not available on this host")
            executable = interpreter.executable
            config: dict[str, Any] = {
                "bind_own_python": True,
                "binds": [*await asyncio.to_thread(sdk_binds, interpreter), *runtime_package_binds()],
                "preload": ["lambdastack.runtime.python.bootstrap"],
                "rehearsal": "lambdastack.runtime.python.rehearsal",
            }
        else:
            if name.startswith("java") and java.INSTALLED is not None:
                await asyncio.to_thread(java.INSTALLED.ensure)  # the runtime client its binds mount
            executable = self.exec_python or Path(os.path.realpath(sys.executable))
            config = {"binds": list(self.exec_binds.get(name, ())), "preload": []}
        base = self.data_dir / "sandbox" / name
        base.mkdir(parents=True, exist_ok=True)
        config.update(mode=self.isolation, base_root=str(base))
        if self.etc_files is not None:
            config["etc"] = self.etc_files()
        return executable, config
