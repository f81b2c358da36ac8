"""lambdastack under the comparison's workloads: a server started as a user starts it, driven over HTTP."""

from __future__ import annotations

import contextlib
import json
import platform
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from bench import loadgen, procmem
from bench.common import BenchServer, Invoker, zip_of
from bench.handlers import HANDLER, NOOP, SLOW_INIT
from bench.loadgen import summary
from bench.peers.cache import numpy_layer_zip, numpy_version
from bench.workload import Sizes, Skipped, Target

ROLE = "arn:aws:iam::000000000000:role/bench"
RUNTIME = f"python{platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]}"
FULL_CORE_MB = 1769  # one vCPU, as on Lambda: a warm no-op is not held back by a CPU quota
IDLE_MB = 128
IDLE_BATCH = 50


class LambdaStack(Target):
    name = "lambdastack"

    def __init__(self) -> None:
        self.isolation = ""
        self.last_stop_s = 0.0

    def version(self) -> str:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        return f"{commit.stdout.strip() or '?'} ({self.isolation or 'isolation not seen yet'})"

    @contextlib.contextmanager
    def _server(self, *extra: str) -> Iterator[BenchServer]:
        server = BenchServer(*extra)
        self.isolation = str(server.health.get("isolation", ""))
        try:
            yield server
        finally:
            # Many environments take a while to shut down: give the server time before BenchServer kills it.
            stopping = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(120)
            self.last_stop_s = time.monotonic() - stopping
            server.close()

    def _create(self, server: BenchServer, name: str, source: str = NOOP, **config: Any) -> None:
        config.setdefault("Runtime", RUNTIME)
        server.client().create_function(FunctionName=name, Role=ROLE, Handler=HANDLER,
                                        Code={"ZipFile": zip_of({"app.py": source})}, **config)

    def _cold_run(self, sizes: Sizes, *extra: str) -> dict[str, Any]:
        with self._server(*extra) as server:
            # The runtime's zygote starts with the first function of the runtime: not what is measured.
            self._create(server, "zygote-warmup")
            loadgen.first_invocation_ms(server.port, "zygote-warmup")
            names = [f"cold-{i}" for i in range(sizes.cold)]
            for name in names:
                self._create(server, name)
            time.sleep(1)
            times = []
            for name in names:
                time.sleep(sizes.cold_gap)
                times.append(loadgen.first_invocation_ms(server.port, name))
        return {**summary(times), "server_options": list(extra)}

    def cold(self, sizes: Sizes) -> dict[str, Any]:
        """The first invocation of each of N new 128 MB functions, with the pre-built pool on, then with it off."""
        pool = self._cold_run(sizes)
        return {**pool, "on_demand": self._cold_run(sizes, "--prebuilt", "0")}

    def snapstart(self, sizes: Sizes) -> dict[str, Any]:
        """The first invocation of each of N published SnapStart versions whose init takes over a second."""
        with self._server() as server:
            runtime = snapstart_runtime(server.health.get("runtimes") or [])
            version_tuple = _python_version(runtime)
            lam = server.client()
            layer = lam.publish_layer_version(
                LayerName="numpy", Content={"ZipFile": numpy_layer_zip(version_tuple).read_bytes()},
                CompatibleRuntimes=[runtime],
            )["LayerVersionArn"]
            versions = []
            for i in range(sizes.snapstart):
                name = f"slow-{i}"
                try:
                    self._create(server, name, SLOW_INIT, Layers=[layer], MemorySize=1024, Timeout=60,
                                 SnapStart={"ApplyOn": "PublishedVersions"}, Runtime=runtime)
                except ClientError as e:
                    raise Skipped(f"the server refuses SnapStart on {runtime}: {e}")
                _wait_active(lam, name)
                version = lam.publish_version(FunctionName=name)["Version"]
                config = _wait_active(lam, name, version)
                status = (config.get("SnapStart") or {}).get("OptimizationStatus")
                if status != "On":
                    raise Skipped(f"the server does not support SnapStart yet (a published version reports "
                                  f"OptimizationStatus {status!r})")
                versions.append(f"{name}:{version}")
            times, init_types = [], set()
            for qualified in versions:
                time.sleep(sizes.cold_gap)
                invoke = Invoker(server.port, qualified)
                t0 = time.perf_counter()
                answer = invoke(loadgen.EVENT)
                times.append((time.perf_counter() - t0) * 1000)
                invoke.conn.close()
                init_types.add(str(json.loads(answer).get("initialization_type")))
        return {**summary(times), "runtime": runtime, "initialization_types": sorted(init_types),
                "numpy": numpy_version(version_tuple)}

    def _warm_function(self, server: BenchServer) -> str:
        self._create(server, "warm", MemorySize=FULL_CORE_MB)
        return "warm"

    def warm(self, sizes: Sizes) -> dict[str, Any]:
        with self._server() as server:
            return loadgen.sequential(server.port, self._warm_function(server), sizes.warm, sizes.warmup)

    def throughput(self, sizes: Sizes) -> dict[str, Any]:
        with self._server() as server:
            return loadgen.concurrent(server.port, self._warm_function(server), sizes.clients, sizes.seconds,
                                      sizes.wrk_threads)

    def idle(self, sizes: Sizes) -> dict[str, Any]:
        """N 128 MB functions invoked once each, so that N idle warm environments exist; their PSS."""
        budget = sizes.idle * IDLE_MB + 8 * FULL_CORE_MB
        with self._server("--memory-budget", str(budget), "--idle-timeout", "7200") as server:
            created = 0
            stopped_by = f"reached {sizes.idle}"
            per_env_mb = 64.0  # a cautious guess until the first batch is measured
            while created < sizes.idle:
                batch = min(IDLE_BATCH, sizes.idle - created)
                if procmem.mem_available_mb() - batch * per_env_mb < sizes.idle_floor_mb:
                    stopped_by = f"host memory: less than {sizes.idle_floor_mb} MB would stay available"
                    break
                for i in range(created, created + batch):
                    self._create(server, f"idle-{i}")
                    loadgen.first_invocation_ms(server.port, f"idle-{i}")
                created += batch
                envs = procmem.usage_of_all([p for c in procmem.environment_cgroups(server.pid())
                                             for p in procmem.cgroup_pids(c)])
                per_env_mb = max(1.0, envs.pss_mb / created)
            time.sleep(3)  # idle environments are frozen after their invocation
            figures = {**self._memory(server), "functions": created, "stopped_by": stopped_by}
        return {**figures, "server_stop_s": self.last_stop_s}

    def _memory(self, server: BenchServer) -> dict[str, Any]:
        cgroups = [c for c in procmem.environment_cgroups(server.pid()) if procmem.cgroup_pids(c)]
        env_pids = {p for c in cgroups for p in procmem.cgroup_pids(c)}
        envs = procmem.usage_of_all(sorted(env_pids))
        own = procmem.usage_of(server.pid())
        helpers = procmem.usage_of_all([p for p in procmem.descendants(server.pid()) if p not in env_pids])
        charged_mb = sum(procmem.cgroup_charged_kb(c) for c in cgroups) / 1024
        per_env = envs.pss_mb / len(cgroups) if cgroups else float("nan")
        fixed = own.pss_mb + helpers.pss_mb
        return {
            "environments": len(cgroups), "environments_pss_mb": envs.pss_mb, "processes": envs.processes,
            "mb_per_environment": per_env, "cgroup_charged_mb_per_environment": charged_mb / max(1, len(cgroups)),
            "server_pss_mb": own.pss_mb, "server_rss_mb": own.rss_mb, "zygotes_pss_mb": helpers.pss_mb,
            "environments_in_24gb": int((24 * 1024 - fixed) / per_env) if cgroups else 0,
        }

    def server(self, sizes: Sizes) -> dict[str, Any]:
        """The server's own memory just after start, with no function and no environment."""
        with self._server() as server:
            time.sleep(2)
            own = procmem.usage_of(server.pid())
            children = procmem.usage_of_all(procmem.descendants(server.pid()))
        return {"pss_mb": own.pss_mb, "rss_mb": own.rss_mb, "children_pss_mb": children.pss_mb,
                "children": children.processes}


def _python_version(runtime: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    return (int(match.group(1)), int(match.group(2))) if match else None


def snapstart_runtime(offered: list[str]) -> str:
    """The newest Python runtime the server offers from 3.12 on (Lambda's first with SnapStart), else its own."""
    eligible = [r for r in offered if (_python_version(r) or (0, 0)) >= (3, 12)]
    return max(eligible, key=lambda r: _python_version(r) or (0, 0)) if eligible else RUNTIME


def _wait_active(lam: Any, name: str, qualifier: str | None = None, timeout: float = 180.0) -> dict[str, Any]:
    """The configuration once State is Active (a SnapStart version is Pending while its snapshot is made)."""
    args = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
    deadline = time.monotonic() + timeout
    while True:
        config: dict[str, Any] = lam.get_function_configuration(**args)
        if config.get("State") != "Pending" and config.get("LastUpdateStatus") != "InProgress":
            if config.get("State") == "Failed":
                raise RuntimeError(f"{name}:{qualifier} failed: {config.get('StateReason')}")
            return config
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}:{qualifier} is still {config.get('State')}")
        time.sleep(0.2)
