"""The worker: runs invocations in pooled execution environments.

`invoke` takes an idle environment of the function version (a warm start) or creates one
(a cold start), hands it the event, waits for the answer within the function's timeout,
and turns what happened into what Lambda reports: the payload or error body, and the
START / END / REPORT log lines with measured durations and memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdastack import errors
from lambdastack.network.environment_network import EnvironmentNetwork
from lambdastack.network.host import NetworkUnavailable
from lambdastack.runtime import protocol
from lambdastack.sandbox import jail
from lambdastack.sandbox.cgroups import Driver, EnvCgroup
from lambdastack.worker import logformat
from lambdastack.worker.capacity import ScalingLimiter
from lambdastack.worker.cpu_latency import CpuLatency
from lambdastack.worker.entrypoint import INVALID_ENTRYPOINT, entrypoint_problem, host_argv
from lambdastack.worker.environment import Environment, EnvironmentDied, EnvironmentStartError, State
from lambdastack.worker.envvars import function_environment
from lambdastack.worker.layers import layer_paths_without_mounts
from lambdastack.worker.loader import python_argv
from lambdastack.worker.memory.admission import MemoryAdmission, MemorySettings
from lambdastack.worker.pool import Pool
from lambdastack.worker.pool_sizing import PrebuiltSizes
from lambdastack.worker.runtimes import PythonInterpreter
from lambdastack.worker.shared_mounts import SharedMounts, SharedMountsUnavailable
from lambdastack.worker.snapstart import SnapStart
from lambdastack.worker.spec import EnvironmentSpec, Invocation, InvokeOutcome, SharedFileSystem
from lambdastack.worker.streaming import follow_stream
from lambdastack.worker.tmp_disks import TmpDisks
from lambdastack.worker.zygote_pool import Zygotes
from lambdastack.worker.zygotes import ZygoteClient

log = logging.getLogger("lambdastack.worker")

INIT_TIMEOUT_S = 10.0
# Provisioned environments may take longer to initialize, as on Lambda.
PROVISIONED_INIT_TIMEOUT_S = 130.0
# How long external extensions get to finish after SHUTDOWN.
SHUTDOWN_GRACE_S = 2.0
PIDS_MAX = 1024
# A pre-built environment's limits until it learns its function's: nothing runs in it yet.
BLANK_MEMORY_MB = 10240
BLANK_TMP_MB = 16
LOG_TAIL_BYTES = 4096

# (account, region, function name, log stream, text)
LogSink = Callable[[str, str, str, str, bytes], None]


@dataclass
class PlatformEnvironment:
    """What the platform gives a function's environment besides its own configuration."""

    overrides: dict[str, str]  # variables over the function's own (its credentials)
    defaults: dict[str, str]  # variables the function may set itself (endpoints)
    # The document the init serves at AWS_CONTAINER_CREDENTIALS_FULL_URI, with the token it
    # expects (`authorization`); None: no container credentials endpoint.
    credentials: dict[str, str] | None = None


PlatformVariables = Callable[[EnvironmentSpec], PlatformEnvironment]


@dataclass
class _InitFailure:
    error_type: str
    body: bytes
    init_ms: float
    log: bytes
    log_stream: str = ""


@dataclass
class WorkerConfig:
    isolation: str  # namespaces | userns | process
    data_dir: Path
    idle_timeout: float = 600.0
    freeze_idle: bool = True
    # Idle time before an environment is frozen; an invocation in between cancels it.
    freeze_delay_s: float = 0.02
    runtimes: dict[str, PythonInterpreter] = field(default_factory=dict)  # python3.X -> real interpreter
    exec_python: Path | None = None  # the interpreter whose zygote starts non-Python runtimes
    # Runtimes that start a program from a zygote of their own, and what it mounts (host, inside).
    exec_binds: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    prebuilt: int = 2  # environments kept built ahead, per runtime in use (namespaces isolation only)
    scaling_per_10s: int = 1000  # new environments per function per 10 seconds, as on Lambda
    memory_budget_mb: int | None = None  # charge full MemorySize within this sum; None: admit by real use
    memory_limit_mb: int | None = None  # memory considered for environments; None: the host's
    memory_reserve: str | None = None  # "MB" or "N%" kept free; None: 10% (>= 1 GiB of a whole host)
    capacity_wait_s: float = 2.0  # how long an invocation waits for room before it is throttled
    cpu_latency_us: int | None = 0  # PM QoS wake-up latency while invocations flow (None: no request)


class Worker:
    def __init__(
        self, config: WorkerConfig, cgroups: Driver | None, log_sink: LogSink,
        network: EnvironmentNetwork | None = None, platform_variables: PlatformVariables | None = None,
        tmp_disks: TmpDisks | None = None,
    ) -> None:
        self.config = config
        self.cgroups = cgroups
        self.log_sink = log_sink
        # Environments' network (None, or not enabled: loopback only), the variables the
        # platform gives each function (credentials, endpoints) and disk-backed /tmp (None: tmpfs).
        self.network = network if network is not None and config.isolation in ("namespaces", "userns") else None
        self.platform_variables = platform_variables
        self.tmp_disks = tmp_disks if config.isolation == "namespaces" else None
        self._shared_mounts = SharedMounts(config.isolation)
        self.pools: dict[str, Pool] = {}
        self.zygotes = Zygotes(
            config.isolation, config.data_dir, config.runtimes, config.exec_python, config.exec_binds,
            self.network.etc_files if self.network is not None else None, self._spawn_refill,
        )
        self._reaper: asyncio.Task[None] | None = None
        self._freezer: asyncio.Task[None] | None = None
        self._thawed: dict[Environment, None] = {}  # idle environments not frozen yet, oldest first
        self._cgroups: set[EnvCgroup] = set()  # of live environments, removed when they are
        self._removals: set[asyncio.Future[bool]] = set()  # cgroup removals under way
        # Environments built ahead of demand, per zygote, each with its channel not yet attached.
        self._prebuilt: dict[str, list[tuple[Environment, socket.socket]]] = {}
        self._refilling: set[str] = set()
        self.prebuilt_sizes = PrebuiltSizes(config.prebuilt)  # how many, from the recent cold-start rate
        # Pre-built environments taken into service whose replacement waits until they have
        # answered their first invocation (or failed): building one beside a cold start would
        # take CPU and the kernel's mount locks from it.
        self._owed_refills: dict[Environment, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.scaling = ScalingLimiter(config.scaling_per_10s)
        self.memory = MemoryAdmission(
            MemorySettings(config.memory_limit_mb, config.memory_reserve, config.memory_budget_mb),
            cgroups.subtree_memory_files() if cgroups else None,
        )
        # Set whenever an environment goes and frees memory, or goes back to idle and can be evicted or
        # taken: what an invocation waiting for room waits for.
        self._room = asyncio.Event()
        self._provisioning: set[str] = set()  # pools whose provisioned environments are being made
        self._drop_to_function_user = self._function_user_applies()
        self.snapstart = SnapStart(self)
        self.cpu_latency = CpuLatency(config.cpu_latency_us)
        self._cpu_latency_task: asyncio.Task[None] | None = None

    def _function_user_applies(self) -> bool:
        """Whether functions run as their own unprivileged user (a root server drops to it).

        With process isolation the function reads its code straight from the data directory,
        so that user must be able to reach it; a private data directory (like root's default
        ~/.lambdastack) is out of its reach, and functions then run as the server's user.
        """
        if self.config.isolation == "userns" or os.geteuid() != 0:
            return False
        if self.config.isolation != "process":
            return True
        folder = self.config.data_dir.resolve()
        for path in (folder, *folder.parents):
            if path.exists() and not os.stat(path).st_mode & 0o001:
                log.warning(
                    "process isolation: %s is not reachable by other users, so functions run as the server's "
                    "user instead of an unprivileged one", path,
                )
                return False
        return True

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())
        if self.config.freeze_idle:
            self._freezer = asyncio.create_task(self._freeze_idle())
        self._cpu_latency_task = asyncio.create_task(self._release_cpu_latency())
        log.info("%s", self.memory.describe())
        self._spawn_task(self.memory.watch(self._evict_lru_idle))

    async def _release_cpu_latency(self) -> None:
        """Give the CPU wake-up latency request back once invocations stop (see cpu_latency.py)."""
        while True:
            await asyncio.sleep(self.cpu_latency.hold_s / 4)
            self.cpu_latency.release_if_idle()

    async def stop(self) -> None:
        self._stopping = True
        if self._cpu_latency_task is not None:
            self._cpu_latency_task.cancel()
        self.cpu_latency.close()
        self._shared_mounts.close()
        if self._reaper is not None:
            self._reaper.cancel()
        if self._freezer is not None:
            self._freezer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for ready in self._prebuilt.values():
            for env, channel in ready:
                env.kill("stopping")
                channel.close()
        self._prebuilt.clear()
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        self.snapstart.close()
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for cgroup in list(self._cgroups):
            if not await loop.run_in_executor(None, cgroup.kill_and_remove):
                log.warning("could not remove an environment's cgroup: %s", cgroup)
        self._cgroups.clear()
        self.zygotes.close()

    async def _freeze_idle(self) -> None:
        """Freeze environments idle for `freeze_delay_s`, as Lambda freezes idle environments.

        Not around every invocation: one in steady use is not frozen and thawed each time,
        which would cost more than the invocation itself.
        """
        delay = self.config.freeze_delay_s
        while True:
            await asyncio.sleep(max(0.005, delay / 2))
            idle_before = time.monotonic() - delay
            for env in [e for e in self._thawed if e.last_used < idle_before]:
                del self._thawed[env]
                if env.state is State.IDLE:
                    env.freeze_when_idle()

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(30.0, self.config.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self._trim_prebuilt()
            for key, pool in list(self.pools.items()):
                for env in pool.reap(now - self.config.idle_timeout):
                    self._spawn_task(self.shut_down(env, "spindown"))
                if pool.empty and pool.retired:
                    del self.pools[key]

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shut_down(self, env: Environment, reason: str) -> None:
        """End an environment as Lambda does: SHUTDOWN to its extensions, then kill it.

        Without extensions there is nothing to wait for (Lambda's 0 ms); with external ones
        they get up to 2 s to finish (the runtime is sent SIGTERM by the init).
        """
        if env.state is State.DEAD:
            return
        grace = SHUTDOWN_GRACE_S if env.extensions else 0.0
        if grace:
            env.state = State.BUSY  # nobody takes it while it shuts down
            env.thaw()
            if env.cgroup is not None:
                env.cgroup.set_cpu(None)  # the grace period is short: let the extensions use it
            deadline = time.monotonic() + grace
            try:
                env.send(protocol.SHUTDOWN, {"reason": reason, "deadline_ms": int((time.time() + grace) * 1000)})
                env.signal_runtime(signal.SIGTERM)
                # The init reports (EXITED, `shutdown`) once every extension has exited, or at the
                # deadline. The runtime's own exit (it was sent SIGTERM) is reported too, and may
                # come first: the extensions may still be writing their last words then.
                while (remaining := deadline - time.monotonic()) > 0:
                    kind, meta, _ = await env.next_frame(remaining)
                    if kind == protocol.EXITED and meta.get("shutdown"):
                        break
            except (EnvironmentDied, TimeoutError):
                pass
            env.flush_output()  # what the extensions said on their way out
        env.kill(reason)

    # ------------------------------------------------------------------ provisioned concurrency

    def provision(self, spec: EnvironmentSpec, count: int) -> None:
        """Keep `count` environments of `spec` initialized ahead of demand."""
        pool = self._pool(spec)
        pool.provisioned_target = count
        pool.provisioning_error = None
        for env in pool.provisioned[count:]:
            if pool.is_idle(env):
                pool.discard(env)
            else:
                env.provisioned = False  # busy: an ordinary environment from now on
        self._spawn_task(self._fill_provisioned(pool, spec))

    def provisioned_counts(self, key: str) -> tuple[int, int, str | None]:
        """(target, environments initialized and ready, last error) of a spec key."""
        pool = self.pools.get(key)
        if pool is None:
            return 0, 0, None
        return pool.provisioned_target, len(pool.provisioned), pool.provisioning_error

    async def _fill_provisioned(self, pool: Pool, spec: EnvironmentSpec) -> None:
        if pool.key in self._provisioning:
            return
        self._provisioning.add(pool.key)
        try:
            while not self._stopping and not pool.retired and len(pool.provisioned) < pool.provisioned_target:
                try:
                    env = await self._spawn_within_budget(spec, initialization_type="provisioned-concurrency")
                except (EnvironmentStartError, errors.LambdaError) as e:
                    pool.provisioning_error = str(e)
                    return
                pool.add(env)
                try:
                    failure = await self._initialize(env, spec, PROVISIONED_INIT_TIMEOUT_S)
                except EnvironmentStartError as e:
                    pool.discard(env)
                    pool.provisioning_error = str(e)
                    return
                if failure is not None:
                    pool.discard(env)
                    pool.provisioning_error = "FUNCTION_ERROR_INIT_FAILURE"
                    return
                self._settle_refill(env)
                env.take_output()
                env.provisioned = True
                env.state = State.IDLE
                pool.release(env)
                if self.config.freeze_idle:
                    env.freeze()
        finally:
            self._provisioning.discard(pool.key)

    def retire(self, predicate: Callable[[str], bool]) -> None:
        """Stop reusing environments whose spec key matches (the function changed or went away)."""
        for key, pool in list(self.pools.items()):
            if predicate(key):
                pool.retire()
                if pool.empty:
                    del self.pools[key]
        for key in [k for k in self.snapstart.templates if predicate(k)]:
            self.snapstart.retire(key)

    def environments(self) -> list[Environment]:
        return [env for pool in self.pools.values() for env in pool.members]

    def prebuilt_count(self) -> int:
        """Environments built ahead and not yet given to a function."""
        return sum(len(ready) for ready in self._prebuilt.values())

    # ------------------------------------------------------------------ zygotes

    async def prepare(self, runtime_spec: EnvironmentSpec) -> None:
        """Start the zygote for a runtime ahead of the first invocation."""
        await self.zygotes.for_spec(runtime_spec)

    # ------------------------------------------------------------------ environments

    def _pool(self, spec: EnvironmentSpec) -> Pool:
        pool = self.pools.get(spec.key)
        if pool is None:
            pool = self.pools[spec.key] = Pool(spec.key)
        return pool

    def _ids(self) -> dict[str, int] | None:
        if not self._drop_to_function_user:
            return None
        return {"uid": jail.FUNCTION_UID, "gid": jail.FUNCTION_GID,
                "init_uid": jail.INIT_UID, "init_gid": jail.INIT_GID}

    async def _start(
        self, zygote: ZygoteClient, memory_mb: int, request: dict[str, Any], extra_fds: list[int] | None = None,
        cgroups_by_fd: bool = False, runtime_channel: bool = True,
    ) -> tuple[Environment, socket.socket]:
        """Fork an environment from `zygote`; returns it with its (not yet attached) channel.

        The environment joins its cgroups by their paths, or (`cgroups_by_fd`, for a
        SnapStart copy, which never holds the privileges to open them) through open files.
        With `runtime_channel` its runtime also gets a socket of its own to the worker (see
        runtime/python/channel_client.py), sent ahead of `extra_fds`.
        """
        env_id = uuid.uuid4().hex
        cgroup = self.cgroups.create(env_id, memory_mb, PIDS_MAX) if self.cgroups else None
        env = Environment(env_id, "", cgroup, "", None, remover=self._remove_cgroup, killer=zygote.kill,
                          on_killed=self._environment_gone)
        if cgroup is not None:
            self._cgroups.add(cgroup)
        runtime_pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if runtime_channel else None
        fds = [runtime_pair[1].fileno()] if runtime_pair is not None else []
        fds += extra_fds or ()
        if runtime_pair is not None:
            request = dict(request, runtime_channel=True)
        opened: list[int] = []
        if cgroups_by_fd:
            opened = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in (cgroup.procs_files() if cgroup else ())]
            fds += opened
        else:
            request = dict(request, cgroup_procs=cgroup.procs_files() if cgroup else [],
                           cgroup_dir=cgroup.clone_into() if cgroup else None)
        ids = self._ids()
        if ids:
            request["ids"] = ids
        if self.network is not None and not cgroups_by_fd:  # a SnapStart copy makes its own namespace
            try:
                request["net"] = self.network.lease(env_id)
            except NetworkUnavailable as e:
                env.kill("could not be created")
                raise EnvironmentStartError(f"could not create an environment: {e}")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        try:
            env.pid = await zygote.spawn(request, theirs.fileno(), log_w, fds)
        except Exception as e:
            ours.close()
            if runtime_pair is not None:
                runtime_pair[0].close()
            os.close(log_r)
            env.kill("could not be created")
            raise EnvironmentStartError(f"could not create an environment: {e}")
        finally:
            theirs.close()
            if runtime_pair is not None:
                runtime_pair[1].close()
            os.close(log_w)
            for fd in opened:
                os.close(fd)
        if self.network is not None and not cgroups_by_fd:
            try:
                await self.network.attach(env_id, zygote.host_pid(env.pid))
            except (NetworkUnavailable, ProcessLookupError) as e:
                ours.close()
                if runtime_pair is not None:
                    runtime_pair[0].close()
                os.close(log_r)
                env.kill("could not be created")
                raise EnvironmentStartError(f"could not connect an environment to the network: {e}")
        env.attach_log(log_r)
        if runtime_pair is not None:
            runtime_pair[0].setblocking(False)
            env.runtime_channel_socket = runtime_pair[0]
        return env, ours

    def _environment_gone(self, env: Environment) -> None:
        self._settle_refill(env)
        if self.network is not None:
            self.network.release(env.id)
        if env.memory_mb:
            self.memory.release(env.memory_mb)
            env.memory_mb = 0
            self._room.set()

    def _scale_out(self, spec: EnvironmentSpec) -> None:
        """Take a token for one more environment of the function, or throttle as Lambda does."""
        if not self.scaling.take((spec.account, spec.region, spec.function_name)):
            raise errors.TooManyRequests("Rate Exceeded.", Reason="FunctionInvocationRateLimitExceeded")

    async def _idle_while_full(self, pool: Pool, memory_mb: int) -> Environment | None:
        """With the memory budget full and nothing idle to evict, the function's own environment
        that comes free first, rather than a cold start that must wait for room (for the time
        `_make_room` would wait, then throttled as it would be); None once a cold start can go ahead."""
        deadline = time.monotonic() + self.config.capacity_wait_s
        while not self.memory.fits(memory_mb) and not any(
                p.idle(evictable_only=True) for p in self.pools.values()):
            remaining = deadline - time.monotonic()
            if remaining > 0:
                self._room.clear()
                try:
                    await asyncio.wait_for(self._room.wait(), remaining)
                except TimeoutError:
                    pass
            if time.monotonic() >= deadline:
                raise errors.TooManyRequests("Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded")
            env = pool.take_idle()
            if env is not None:
                return env
        return None

    async def _make_room(self, memory_mb: int) -> None:
        """Commit `memory_mb` of the budget: evict idle environments (least recently used
        first) if needed, wait a little for busy ones to finish, else throttle."""
        deadline = time.monotonic() + self.config.capacity_wait_s
        while not self.memory.fits(memory_mb):
            if self._evict_lru_idle():
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise errors.TooManyRequests("Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded")
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), remaining)
            except TimeoutError:
                pass
        self.memory.commit(memory_mb)

    def _evict_lru_idle(self) -> bool:
        """End the least recently used idle environment that may be evicted; False if none is."""
        idle = [(env.last_used, id(env), pool, env) for pool in self.pools.values()
                for env in pool.idle(evictable_only=True)]
        if not idle:
            return False
        _, _, pool, victim = min(idle, key=lambda item: item[:2])
        pool.discard(victim)
        return True

    def _assignment(self, env: Environment, spec: EnvironmentSpec, initialization_type: str) -> dict[str, Any]:
        """What the environment's runtime must know about its function; binds `env` to `spec`."""
        today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        log_stream = f"{today}/[{spec.version}]{env.id}"
        env.assigned(spec.key, log_stream, self._stray_output(spec))
        platform = self.platform_variables(spec) if self.platform_variables else PlatformEnvironment({}, {})
        variables = function_environment(spec, log_stream, initialization_type, platform.overrides, platform.defaults)
        argv = list(spec.argv or ())
        interpreter = self.config.runtimes.get(spec.runtime)
        if not argv and spec.fresh_runtime_process and interpreter is not None:
            argv = list(python_argv(interpreter.executable, spec.environment))  # see worker/loader.py
        if self.config.isolation == "process":
            variables["LAMBDA_TASK_ROOT"] = str(spec.code_dir) if spec.code_dir else "/var/task"
            argv = host_argv(spec, self.config.exec_binds.get(spec.runtime, ()))
            variables.update(layer_paths_without_mounts(variables, spec.opt_dirs))
        assignment: dict[str, Any] = {
            "env": variables,
            "tmp_mb": spec.ephemeral_mb,
            "cwd": spec.cwd or variables["LAMBDA_TASK_ROOT"],
            "rlimits": self._rlimits(spec, env.cgroup is not None),
            "runtime": {"kind": "exec", "argv": argv} if argv
            else {"kind": "python", "handler": spec.handler},
        }
        if platform.credentials is not None:
            assignment["credentials"] = platform.credentials  # for the init; the runtime never sees it
        return assignment

    async def spawn(self, spec: EnvironmentSpec, initialization_type: str = "on-demand") -> Environment:
        """An environment for `spec`: a pre-built one taken into service, or a new one.

        Does not wait for its init to finish.
        """
        zygote = await self.zygotes.for_spec(spec)
        if self._prebuilt_fits(spec):
            env = await self._take_prebuilt(zygote.name, spec, initialization_type)
            if env is not None:
                return env
        return await self.spawn_fresh(spec, initialization_type)

    async def spawn_fresh(self, spec: EnvironmentSpec, initialization_type: str = "on-demand") -> Environment:
        """A new environment built for `spec` (not a pre-built one)."""
        if spec.root is not None and self.config.isolation == "process":
            raise EnvironmentStartError("container images need namespaces: this server runs functions as processes")
        if spec.file_systems and self.config.isolation != "namespaces":
            raise EnvironmentStartError(
                f"file systems need namespace isolation with root: this server runs with --isolation "
                f"{self.config.isolation}")
        zygote = await self.zygotes.for_spec(spec)
        request: dict[str, Any] = {
            "tmp_mb": spec.ephemeral_mb,
            "task_dir": str(spec.code_dir) if spec.code_dir else None,
            "opt_dirs": [str(d) for d in spec.opt_dirs],
            "root": str(spec.root) if spec.root else None,
        }
        env, channel = await self._start(zygote, spec.memory_mb, request)
        await self._send_assignment(env, channel, self._assignment(env, spec, initialization_type), None,
                                    spec.file_systems)
        return env

    # ------------------------------------------------------------------ pre-built environments

    def _prebuilt_fits(self, spec: EnvironmentSpec) -> bool:
        """Pre-built environments have the runtime's standard root and receive only the code."""
        return (
            self.config.prebuilt > 0 and self.config.isolation == "namespaces" and spec.root is None
            and not spec.opt_dirs and spec.code_dir is not None
        )

    async def _build_blank(self, zygote: ZygoteClient) -> None:
        try:
            env, channel = await self._start(zygote, BLANK_MEMORY_MB, {"tmp_mb": BLANK_TMP_MB, "prebuilt": True})
        except EnvironmentStartError as e:
            log.warning("could not pre-build an environment for %s: %s", zygote.name, e)
            return
        if self._stopping:
            env.kill("stopping")
            channel.close()
            return
        self._prebuilt.setdefault(zygote.name, []).append((env, channel))

    async def _refill(self, zygote: ZygoteClient) -> None:
        name = zygote.name
        if name in self._refilling:
            return
        self._refilling.add(name)
        try:
            while not self._stopping and zygote.alive and len(self._prebuilt.get(name, ())) < self._prebuilt_target(
                    name):
                wait = self.prebuilt_sizes[name].wait_before_build(len(self._prebuilt.get(name, ())))
                if wait > 0:  # cold starts are under way: build once they pause (see pool_sizing.py)
                    await asyncio.sleep(wait)
                    continue
                await self._build_blank(zygote)
        finally:
            self._refilling.discard(name)

    async def _take_prebuilt(
        self, name: str, spec: EnvironmentSpec, initialization_type: str
    ) -> Environment | None:
        ready = self._prebuilt.get(name) or []
        zygote = self.zygotes.get(name)
        self.prebuilt_sizes[name].record(served=any(env.death is None for env, _ in ready))
        while ready:
            env, channel = ready.pop()
            if env.death is not None:
                channel.close()
                self._spawn_refill(zygote)
                continue
            env.prebuilt = True
            self.refill_later(env, lambda: self._spawn_refill(zygote))
            try:
                if env.cgroup is not None:
                    env.cgroup.set_memory(spec.memory_mb)
                await self._send_assignment(env, channel, self._assignment(env, spec, initialization_type),
                                            spec.code_dir, spec.file_systems)
            except (OSError, EnvironmentStartError) as e:
                log.info("a pre-built environment could not be taken into service: %s", e)
                env.kill("assignment failed")
                self._settle_refill(env)
                continue
            return env
        self._spawn_refill(zygote)
        return None

    def _prebuilt_target(self, name: str) -> int:
        return self.prebuilt_sizes[name].target(self.memory.capacity_mb - self.memory.committed_mb)

    def _trim_prebuilt(self) -> None:
        """Shut down pre-built environments beyond their pool's target (the oldest first)."""
        for name, ready in self._prebuilt.items():
            for env, channel in ready[:max(0, len(ready) - self._prebuilt_target(name))]:
                ready.remove((env, channel))
                env.kill("spindown")
                channel.close()

    def prebuilt_status(self) -> dict[str, Any]:
        """Per zygote: environments built ahead, the pool's target, and cold starts served from it."""
        return self.prebuilt_sizes.status({name: len(ready) for name, ready in self._prebuilt.items()},
                                          self.memory.capacity_mb - self.memory.committed_mb)

    def refill_later(self, env: Environment, refill: Callable[[], None]) -> None:
        """Call `refill` (to replace `env`, taken from environments made ahead of demand) once
        `env` has answered its first invocation, or failed."""
        self._owed_refills[env] = refill

    def _settle_refill(self, env: Environment) -> None:
        refill = self._owed_refills.pop(env, None)
        if refill is not None:
            refill()

    def _spawn_refill(self, zygote: ZygoteClient) -> None:
        if self.config.prebuilt > 0 and self.config.isolation == "namespaces" and not self._stopping:
            self._spawn_task(self._refill(zygote))

    async def _send_assignment(
        self, env: Environment, channel: socket.socket, assignment: dict[str, Any], code_dir: Path | None,
        file_systems: tuple[SharedFileSystem, ...] = (),
    ) -> None:
        """Send an ASSIGN frame (with the code's read-only mount tree, a disk-backed /tmp and the
        shared file systems, as the frame's `mounts` say), then listen to the channel."""
        fds: list[int] = []
        mounts: list[str] = []
        if code_dir is not None:
            fds.append(jail.readonly_tree(str(code_dir)))
            mounts.append("/var/task")
        try:
            for shared in file_systems:
                fds.append(self._shared_mounts.tree(shared))
                mounts.append(shared.target)
        except (OSError, SharedMountsUnavailable) as e:
            for fd in fds:
                os.close(fd)
            raise EnvironmentStartError(f"could not mount the function's file system: {e}")
        if self.tmp_disks is not None:
            try:
                fds.append(await self.tmp_disks.take(int(assignment["tmp_mb"])))
                mounts.append("/tmp")
            except (OSError, subprocess.CalledProcessError) as e:
                for fd in fds:
                    os.close(fd)
                raise EnvironmentStartError(f"could not make the environment's /tmp: {e}")
        frame = protocol.encode(protocol.ASSIGN, dict(assignment, mounts=mounts))
        try:
            channel.setblocking(True)
            socket.send_fds(channel, [frame], fds) if fds else channel.sendall(frame)
        finally:
            for fd in fds:
                os.close(fd)
        channel.setblocking(False)
        await env.attach_channel(channel)

    @staticmethod
    def _rlimits(spec: EnvironmentSpec, has_cgroup: bool) -> dict[str, int]:
        limits = {"NOFILE": 1024, "CORE": 0}
        if not has_cgroup:
            # Without a memory cgroup, bound the function's data segment instead.
            limits["DATA"] = spec.memory_mb * 1024 * 1024
        return limits

    def _remove_cgroup(self, cgroup: EnvCgroup) -> None:
        """Remove a killed environment's cgroup off the event loop (it waits for the processes to go)."""
        removal = asyncio.get_running_loop().run_in_executor(None, cgroup.kill_and_remove)
        self._removals.add(removal)

        def done(f: asyncio.Future[bool]) -> None:
            self._removals.discard(f)
            if not f.cancelled() and f.exception() is None and f.result():
                self._cgroups.discard(cgroup)

        removal.add_done_callback(done)

    def _stray_output(self, spec: EnvironmentSpec) -> Callable[[Environment, bytes], None]:
        def sink(env: Environment, data: bytes) -> None:
            self.log_sink(spec.account, spec.region, spec.function_name, env.log_stream, data)

        return sink

    async def _initialize(self, env: Environment, spec: EnvironmentSpec, timeout: float) -> _InitFailure | None:
        """Wait for the runtime's first `next`. None when init succeeded."""
        try:
            failure = await self._await_init(env, spec, timeout)
        except BaseException:
            self._settle_refill(env)
            raise
        if failure is not None:
            self._settle_refill(env)
        return failure

    async def _await_init(self, env: Environment, spec: EnvironmentSpec, timeout: float) -> _InitFailure | None:
        started = env.created
        try:
            kind, meta, body = await env.next_frame(timeout)
        except TimeoutError:
            init_ms = (time.monotonic() - started) * 1000
            env.kill("init timed out")
            return _InitFailure("Sandbox.Timedout", b"", init_ms, env.take_output())
        except EnvironmentDied as e:
            init_ms = (time.monotonic() - started) * 1000
            output = env.take_output()
            env.kill(e.reason)
            return _InitFailure("Runtime.Unknown", b"", init_ms, output)
        init_ms = (time.monotonic() - started) * 1000
        if kind == protocol.READY:
            env.init_ns = int(init_ms * 1e6)
            env.extensions = int(meta.get("extensions", 0))
            env.runtime_pid = int(meta.get("runtime_pid", 0))
            if env.cgroup is not None:
                env.cgroup.set_cpu(spec.memory_mb)  # init ran unthrottled; invocations get their share
            return None
        output = env.take_output()
        env.kill("init failed")
        if kind == protocol.SETUP_ERROR:
            log.error("environment %s could not be built: %s", env.id, meta.get("error"))
            raise EnvironmentStartError("lambdastack could not build the execution environment")
        if kind == protocol.INIT_ERROR:
            return _InitFailure(meta.get("error_type") or "Runtime.Unknown", body, init_ms, output)
        if kind == protocol.EXITED:
            return _InitFailure("Runtime.ExitError", json.dumps({"exit": logformat.exit_description(meta)}).encode(),
                                init_ms, output)
        return _InitFailure("Runtime.Unknown", b"", init_ms, output)

    # ------------------------------------------------------------------ invoke

    async def invoke(self, spec: EnvironmentSpec, inv: Invocation) -> InvokeOutcome:
        self.cpu_latency.touch()
        try:
            return await self._invoke_once(spec, inv, retry_undelivered=True)
        except _Undelivered:
            # The environment's runtime exited without asking for this event (it answered the
            # one before and then ended): it never started here, so it goes to another one.
            return await self._invoke_once(spec, inv, retry_undelivered=False)

    async def _invoke_once(self, spec: EnvironmentSpec, inv: Invocation, retry_undelivered: bool) -> InvokeOutcome:
        pool = self._pool(spec)
        env = pool.take_idle() or await self._idle_while_full(pool, self.memory.expected_mb(spec.key, spec.memory_mb))
        init_ms: float | None = None
        restore_ms: float | None = None
        preamble = b""
        if env is None and self.snapstart.applies(spec):
            env, restore_ms, preamble = await self.snapstart.cold_start(spec, pool)
        elif env is None:
            env, init_ms, preamble, failure = await self._cold_start(spec, inv, pool)
            if failure is not None:
                return self._init_failure_outcome(spec, inv, failure)
        assert env is not None
        try:
            return await self._run(env, spec, inv, init_ms, preamble, restore_ms, retry_undelivered)
        finally:
            self._settle_refill(env)
            if env.state is State.DEAD:
                pool.discard(env)
                if env.provisioned and pool.provisioned_target:
                    self._spawn_task(self._fill_provisioned(pool, spec))
            else:
                pool.release(env)
                self._room.set()
                if self.config.freeze_idle and pool.is_idle(env):
                    self._thawed[env] = None  # frozen once idle for freeze_delay_s: see _freeze_idle

    @staticmethod
    def _drop_undelivered(env: Environment) -> None:
        env.flush_stray_output()  # what it printed on its way out belongs to no invocation
        env.kill("its runtime exited before it took its next event")
        raise _Undelivered()

    async def _spawn_within_budget(
        self, spec: EnvironmentSpec, fresh: bool = False, initialization_type: str = "on-demand"
    ) -> Environment:
        charge = self.memory.expected_mb(spec.key, spec.memory_mb)
        await self._make_room(charge)
        try:
            if fresh:
                env = await self.spawn_fresh(spec, initialization_type)
            else:
                env = await self.spawn(spec, initialization_type)
        except BaseException:
            self.memory.release(charge)
            self._room.set()
            raise
        env.memory_mb = charge  # released when the environment goes
        if env.state is State.DEAD:  # it went before it could own its share
            self._environment_gone(env)
        return env

    async def _cold_start(
        self, spec: EnvironmentSpec, inv: Invocation, pool: Pool
    ) -> tuple[Environment | None, float | None, bytes, _InitFailure | None]:
        """Create and initialize an environment; on failure, retry init once as Lambda does.

        A failed first init is logged to its stream with `INIT_REPORT ... Phase: init`; the
        retried ("suppressed") init runs within the invocation, so its output and its
        `INIT_REPORT ... Phase: invoke` belong to the invocation's own log.
        """
        failure: _InitFailure | None = self._invalid_entrypoint(spec, inv)
        if failure is not None:
            return None, None, b"", failure
        self._scale_out(spec)
        for attempt in range(2):
            env = await self._spawn_within_budget(spec)
            pool.add(env)
            timeout = INIT_TIMEOUT_S if attempt == 0 else float(spec.timeout_s)
            try:
                failure = await self._initialize(env, spec, timeout)
            except EnvironmentStartError:
                if not env.prebuilt:
                    raise
                # A pre-built environment that broke is the platform's problem, not the
                # function's: build a fresh one instead.
                pool.discard(env)
                env = await self._spawn_within_budget(spec, fresh=True)
                pool.add(env)
                failure = await self._initialize(env, spec, timeout)
            if failure is None:
                return env, env.init_ns / 1e6 if env.init_ns else None, env.take_output(), None
            pool.discard(env)
            status = "timeout" if failure.error_type == "Sandbox.Timedout" else "error"
            failure.log += logformat.init_report_line(
                failure.init_ms, "init" if attempt == 0 else "invoke", status,
                None if status == "timeout" else failure.error_type,
            ).encode()
            failure.log_stream = env.log_stream
            if attempt == 0:
                self.log_sink(spec.account, spec.region, spec.function_name, env.log_stream, failure.log)
        return None, None, b"", failure

    def _invalid_entrypoint(self, spec: EnvironmentSpec, inv: Invocation) -> _InitFailure | None:
        """A program that cannot start fails both inits at once, as on Lambda, and nothing is forked."""
        started = time.monotonic()
        problem = entrypoint_problem(spec)
        if problem is None:
            return None
        init_ms = (time.monotonic() - started) * 1000
        stream = f"{dt.datetime.now(dt.UTC).strftime('%Y/%m/%d')}/[{spec.version}]{uuid.uuid4().hex}"
        first = logformat.init_report_line(init_ms, "init", "error", INVALID_ENTRYPOINT)
        self.log_sink(spec.account, spec.region, spec.function_name, stream, first.encode())
        message = f"RequestId: {inv.request_id} Error: {problem}"
        body = json.dumps({"errorMessage": message, "errorType": INVALID_ENTRYPOINT}).encode()
        text = logformat.init_report_line(init_ms, "invoke", "error", INVALID_ENTRYPOINT)
        text += f"{message}\n{INVALID_ENTRYPOINT}\n"
        return _InitFailure(INVALID_ENTRYPOINT, body, init_ms, text.encode(), stream)

    def _init_failure_outcome(self, spec: EnvironmentSpec, inv: Invocation, failure: _InitFailure) -> InvokeOutcome:
        rid = inv.request_id
        if failure.error_type == "Sandbox.Timedout":
            body = _error_body(f"RequestId: {rid} Error: Task timed out after {spec.timeout_s:.2f} seconds",
                               "Sandbox.Timedout")
        elif failure.error_type == "Runtime.ExitError":
            exit_text = json.loads(failure.body or b"{}").get("exit", "exit status 1")
            body = _error_body(f"RequestId: {rid} Error: Runtime exited with error: {exit_text}", "Runtime.ExitError")
        elif failure.body:
            body = failure.body
        else:
            body = _error_body("Unknown application error occurred", failure.error_type)
        duration = failure.init_ms
        billed = logformat.billed_ms(duration)
        text = (
            logformat.start_line(rid, spec.version).encode()
            + failure.log
            + logformat.end_line(rid).encode()
            + logformat.report_line(rid, duration, billed, spec.memory_mb, 0, None, "error", failure.error_type)
            .encode()
        )
        self.log_sink(spec.account, spec.region, spec.function_name, failure.log_stream, text)
        return InvokeOutcome(
            payload=body, function_error="Unhandled", error_type=failure.error_type, duration_ms=duration,
            billed_ms=billed, memory_mb=spec.memory_mb, max_memory_used_mb=0, init_duration_ms=None,
            log=text, environment_id="",
        )

    async def _run(
        self, env: Environment, spec: EnvironmentSpec, inv: Invocation, init_ms: float | None, preamble: bytes,
        restore_ms: float | None = None, retry_undelivered: bool = False,
    ) -> InvokeOutcome:
        rid = inv.request_id
        env.state = State.BUSY
        env.invocations += 1
        self._thawed.pop(env, None)
        env.thaw()
        started = time.monotonic()
        deadline_ms = inv.deadline_ms or int(time.time() * 1000) + spec.timeout_s * 1000
        meta: dict[str, Any] = {
            "request_id": rid, "deadline_ms": deadline_ms, "invoked_arn": inv.invoked_arn,
            "content_type": inv.content_type,
        }
        if inv.trace_id:
            meta["trace_id"] = inv.trace_id
        if inv.client_context:
            meta["client_context"] = inv.client_context
        if inv.cognito_identity:
            meta["cognito_identity"] = inv.cognito_identity
        if inv.tenant_id:
            meta["tenant_id"] = inv.tenant_id
        status: str | None = None
        function_error: str | None = None
        error_type: str | None = None
        content_type = "application/json"
        duration_ms: float | None = None
        timed_out = False
        sent = False
        try:
            env.send(protocol.INVOKE, meta, inv.payload)
            sent = True
            while True:
                remaining = max(0.0, deadline_ms / 1000 - time.time())
                kind, rmeta, body = await env.next_frame(remaining)
                # A late answer to an earlier event (a runtime that answered on its own first) is not this one's.
                if kind not in (protocol.RESPONSE, protocol.ERROR) or rmeta.get("request_id", rid) in (rid, ""):
                    break
            if retry_undelivered and kind == protocol.EXITED and _never_taken(env, rmeta, rid):
                self._drop_undelivered(env)
            if kind == protocol.STREAM_START:
                kind, rmeta, body = await follow_stream(env, rmeta, inv.sink, deadline_ms)
        except TimeoutError:
            timed_out = True
            kind, rmeta, body = -1, {}, b""
        except EnvironmentDied:
            if retry_undelivered and not sent:  # it was gone before the event could be handed over
                self._drop_undelivered(env)
            kind, rmeta, body = protocol.EXITED, {}, b""
        if "duration_ns" in rmeta:
            duration_ms = rmeta["duration_ns"] / 1e6
        else:
            duration_ms = (time.monotonic() - started) * 1000
        output = env.take_output()
        if output and not output.endswith(b"\n"):
            output += b"\n"  # END starts a line of its own (on Lambda, each is a log event of its own)
        if kind == protocol.RESPONSE:
            payload = body
            content_type = rmeta.get("content_type", content_type)
        elif kind == protocol.ERROR:
            payload = body or _error_body("Unknown application error occurred", rmeta.get("error_type"))
            function_error = "Unhandled"
            error_type = rmeta.get("error_type")
            status = "error"
        elif timed_out:
            payload = _error_body(f"RequestId: {rid} Error: Task timed out after {spec.timeout_s:.2f} seconds",
                                  "Sandbox.Timedout")
            function_error, error_type, status = "Unhandled", "Sandbox.Timedout", "timeout"
            duration_ms = spec.timeout_s * 1000.0
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            output += f"{stamp} {rid} Task timed out after {spec.timeout_s:.2f} seconds\n".encode()
        else:
            # The runtime (or the whole environment) exited in the middle of the invocation.
            oom = env.oom_killed()
            reason = logformat.exit_description(rmeta) if rmeta else "signal: killed"
            error_type = "Runtime.OutOfMemory" if oom else "Runtime.ExitError"
            payload = _error_body(f"RequestId: {rid} Error: Runtime exited with error: {reason}", error_type)
            function_error, status = "Unhandled", "error"
            output += f"RequestId: {rid} Error: Runtime exited with error: {reason}\n{error_type}\n".encode()
        max_used = env.max_memory_mb() if env.cgroup is not None else 0
        if error_type == "Runtime.OutOfMemory":
            max_used = spec.memory_mb
        env.memory_mb = self.memory.learned(spec.key, spec.memory_mb, env.memory_mb, max_used)
        # After a refused, too large response the runtime exits (as Lambda's runtimes do):
        # the environment must not take another event.
        if kind not in (protocol.RESPONSE, protocol.ERROR) or error_type == "Function.ResponseSizeTooLarge":
            env.kill(status or "failed")
        else:
            env.state = State.IDLE
            env.last_used = time.monotonic()
        billed = logformat.billed_ms(duration_ms, init_ms, restore_ms)
        text = (
            logformat.start_line(rid, spec.version).encode()
            + output
            + logformat.end_line(rid).encode()
            + logformat.report_line(rid, duration_ms, billed, spec.memory_mb, max_used, init_ms, status, error_type,
                                    restore_ms).encode()
        )
        self.log_sink(spec.account, spec.region, spec.function_name, env.log_stream, preamble + text)
        return InvokeOutcome(
            payload=payload, function_error=function_error, error_type=error_type, duration_ms=duration_ms,
            billed_ms=billed, memory_mb=spec.memory_mb, max_memory_used_mb=max_used, init_duration_ms=init_ms,
            log=text, environment_id=env.id, content_type=content_type, provisioned=env.provisioned,
        )


class _Undelivered(Exception):
    """The environment's runtime exited before it took the event: nothing of it ran."""


def _never_taken(env: Environment, exited: dict[str, Any], request_id: str) -> bool:
    """Whether a runtime's exit (EXITED) shows that it never took the event `request_id`.

    Where events pass through the init, its EXITED names the event the runtime held unanswered
    (`request_id`). An exit that names another, or none, was reported before the init saw this
    event: the runtime answered the one before and exited (Node.js after an uncaught
    exception, exit status 129) while the event was on its way. A runtime with a socket of its
    own (`direct`) takes events where the init cannot see them, so its exit proves nothing.
    """
    return not env.direct and exited.get("request_id") != request_id


def _error_body(message: str, error_type: str | None) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type or "Runtime.Unknown"}).encode()
