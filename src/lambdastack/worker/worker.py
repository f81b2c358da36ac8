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
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdastack.runtime import protocol
from lambdastack.sandbox import jail
from lambdastack.sandbox.cgroups import Driver, EnvCgroup
from lambdastack.worker import logformat
from lambdastack.worker.entrypoint import INVALID_ENTRYPOINT, entrypoint_problem
from lambdastack.worker.environment import Environment, EnvironmentDied, State
from lambdastack.worker.envvars import function_environment
from lambdastack.worker.layers import layer_paths_without_mounts
from lambdastack.worker.pool import Pool
from lambdastack.worker.runtimes import PythonInterpreter
from lambdastack.worker.sdk import sdk_binds
from lambdastack.worker.spec import EnvironmentSpec, Invocation, InvokeOutcome
from lambdastack.worker.zygotes import ZygoteClient, ZygoteError

log = logging.getLogger("lambdastack.worker")

INIT_TIMEOUT_S = 10.0
PIDS_MAX = 1024
LOG_TAIL_BYTES = 4096

# (account, region, function name, log stream, text)
LogSink = Callable[[str, str, str, str, bytes], None]


class EnvironmentStartError(Exception):
    """lambdastack could not create an environment (a platform fault, not the function's)."""


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
    runtimes: dict[str, PythonInterpreter] = field(default_factory=dict)  # python3.X -> real interpreter
    exec_python: Path | None = None  # the interpreter whose zygote starts non-Python runtimes
    # Runtimes that start a program from a zygote of their own, and what it mounts (host, inside).
    exec_binds: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class Worker:
    def __init__(self, config: WorkerConfig, cgroups: Driver | None, log_sink: LogSink) -> None:
        self.config = config
        self.cgroups = cgroups
        self.log_sink = log_sink
        self.pools: dict[str, Pool] = {}
        self.zygotes: dict[str, ZygoteClient] = {}
        self._zygote_locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._cgroups: set[EnvCgroup] = set()  # of live environments, removed when they are
        self._removals: set[asyncio.Future[bool]] = set()  # cgroup removals under way
        self._drop_to_function_user = self._function_user_applies()

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

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        if self._removals:
            await asyncio.gather(*self._removals, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for cgroup in list(self._cgroups):
            if not await loop.run_in_executor(None, cgroup.kill_and_remove):
                log.warning("could not remove an environment's cgroup: %s", cgroup)
        self._cgroups.clear()
        for zygote in self.zygotes.values():
            zygote.close()
        self.zygotes.clear()

    async def _reap_idle(self) -> None:
        interval = max(0.05, min(30.0, self.config.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for key, pool in list(self.pools.items()):
                pool.reap(now - self.config.idle_timeout)
                if pool.empty and pool.retired:
                    del self.pools[key]

    def retire(self, predicate: Callable[[str], bool]) -> None:
        """Stop reusing environments whose spec key matches (the function changed or went away)."""
        for key, pool in list(self.pools.items()):
            if predicate(key):
                pool.retire()
                if pool.empty:
                    del self.pools[key]

    def environments(self) -> list[Environment]:
        return [env for pool in self.pools.values() for env in pool.members]

    # ------------------------------------------------------------------ zygotes

    async def _zygote_config(self, spec: EnvironmentSpec) -> tuple[str, Path, dict[str, Any]]:
        if spec.runtime.startswith("python") and spec.argv is None:
            interpreter = self.config.runtimes.get(spec.runtime)
            if interpreter is None:
                raise EnvironmentStartError(f"runtime {spec.runtime} is not available on this host")
            name, executable = spec.runtime, interpreter.executable
            config: dict[str, Any] = {
                "bind_own_python": True,
                "binds": await asyncio.to_thread(sdk_binds, interpreter),
                "preload": ["lambdastack.runtime.python.bootstrap"],
            }
        else:
            executable = self.config.exec_python or Path(os.path.realpath(sys.executable))
            name = self._zygote_name(spec)
            config = {"binds": list(self.config.exec_binds.get(name, ())), "preload": []}
        base = self.config.data_dir / "sandbox" / name
        base.mkdir(parents=True, exist_ok=True)
        config.update(mode=self.config.isolation, base_root=str(base))
        return name, executable, config

    def _zygote_name(self, spec: EnvironmentSpec) -> str:
        if spec.runtime.startswith("python") and spec.argv is None:
            return spec.runtime
        return spec.runtime if spec.runtime in self.config.exec_binds and spec.root is None else "exec"

    async def _zygote_for(self, spec: EnvironmentSpec) -> ZygoteClient:
        name = self._zygote_name(spec)
        zygote = self.zygotes.get(name)
        if zygote is not None and zygote.alive:
            return zygote
        lock = self._zygote_locks.setdefault(name, asyncio.Lock())
        async with lock:
            zygote = self.zygotes.get(name)
            if zygote is not None and zygote.alive:
                return zygote
            name, executable, config = await self._zygote_config(spec)
            zygote = ZygoteClient(name, executable, config)
            try:
                info = await zygote.start()
            except ZygoteError as e:
                raise EnvironmentStartError(str(e))
            log.info("zygote %s ready: %s", name, info)
            self.zygotes[name] = zygote
            return zygote

    async def prepare(self, runtime_spec: EnvironmentSpec) -> None:
        """Start the zygote for a runtime ahead of the first invocation."""
        await self._zygote_for(runtime_spec)

    # ------------------------------------------------------------------ environments

    def _pool(self, spec: EnvironmentSpec) -> Pool:
        pool = self.pools.get(spec.key)
        if pool is None:
            pool = self.pools[spec.key] = Pool(spec.key)
        return pool

    async def spawn(self, spec: EnvironmentSpec, initialization_type: str = "on-demand") -> Environment:
        """Create an environment and start its init; does not wait for init to finish."""
        zygote = await self._zygote_for(spec)
        env_id = uuid.uuid4().hex
        today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        log_stream = f"{today}/[{spec.version}]{env_id}"
        isolated = self.config.isolation != "process"
        cgroup = self.cgroups.create(env_id, spec.memory_mb, PIDS_MAX) if self.cgroups else None
        env = Environment(env_id, spec.key, cgroup, log_stream, self._stray_output(spec),
                          remover=self._remove_cgroup, killer=zygote.kill)
        if cgroup is not None:
            self._cgroups.add(cgroup)
        variables = function_environment(spec, log_stream, initialization_type)
        task_dir = str(spec.code_dir) if spec.code_dir else None
        if isolated:
            variables["LAMBDA_TASK_ROOT"] = "/var/task"
        else:
            variables["LAMBDA_TASK_ROOT"] = task_dir or "/var/task"
            variables.update(layer_paths_without_mounts(variables, spec.opt_dirs))
        request: dict[str, Any] = {
            "env": variables,
            "tmp_mb": spec.ephemeral_mb,
            "task_dir": task_dir,
            "opt_dirs": [str(d) for d in spec.opt_dirs],
            "root": str(spec.root) if spec.root else None,
            "cgroup_procs": cgroup.procs_files() if cgroup else [],
            "cwd": spec.cwd or variables["LAMBDA_TASK_ROOT"],
            "rlimits": self._rlimits(spec, cgroup is not None),
            "runtime": {"kind": "exec", "argv": list(spec.argv)} if spec.argv
            else {"kind": "python", "handler": spec.handler},
        }
        if self._drop_to_function_user:
            request["ids"] = {
                "uid": jail.FUNCTION_UID, "gid": jail.FUNCTION_GID,
                "init_uid": jail.INIT_UID, "init_gid": jail.INIT_GID,
            }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_r, log_w = os.pipe()
        try:
            env.pid = await zygote.spawn(request, theirs.fileno(), log_w)
        except Exception as e:
            ours.close()
            os.close(log_r)
            if cgroup is not None:
                cgroup.kill_and_remove()
            raise EnvironmentStartError(f"could not create an environment: {e}")
        finally:
            theirs.close()
            os.close(log_w)
        await env.attach(ours, log_r)
        return env

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
        pool = self._pool(spec)
        env = pool.take_idle()
        init_ms: float | None = None
        preamble = b""
        if env is None:
            env, init_ms, preamble, failure = await self._cold_start(spec, inv, pool)
            if failure is not None:
                return self._init_failure_outcome(spec, inv, failure)
        assert env is not None
        try:
            return await self._run(env, spec, inv, init_ms, preamble)
        finally:
            if env.state is State.DEAD:
                pool.discard(env)
            else:
                pool.release(env)
                if self.config.freeze_idle and pool.is_idle(env):
                    env.freeze()

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
        for attempt in range(2):
            env = await self.spawn(spec)
            pool.add(env)
            timeout = INIT_TIMEOUT_S if attempt == 0 else float(spec.timeout_s)
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
        self, env: Environment, spec: EnvironmentSpec, inv: Invocation, init_ms: float | None, preamble: bytes
    ) -> InvokeOutcome:
        rid = inv.request_id
        env.state = State.BUSY
        env.invocations += 1
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
        try:
            env.send(protocol.INVOKE, meta, inv.payload)
            remaining = max(0.0, deadline_ms / 1000 - time.time())
            kind, rmeta, body = await env.next_frame(remaining)
        except TimeoutError:
            timed_out = True
            kind, rmeta, body = -1, {}, b""
        except EnvironmentDied as e:
            kind, rmeta, body = protocol.EXITED, (e.frame[1] if e.frame else {}), b""
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
        # After a refused, too large response the runtime exits (as Lambda's runtimes do):
        # the environment must not take another event.
        if kind not in (protocol.RESPONSE, protocol.ERROR) or error_type == "Function.ResponseSizeTooLarge":
            env.kill(status or "failed")
        else:
            env.state = State.IDLE
            env.last_used = time.monotonic()
        billed = logformat.billed_ms(duration_ms, init_ms)
        text = (
            logformat.start_line(rid, spec.version).encode()
            + output
            + logformat.end_line(rid).encode()
            + logformat.report_line(rid, duration_ms, billed, spec.memory_mb, max_used, init_ms, status, error_type)
            .encode()
        )
        self.log_sink(spec.account, spec.region, spec.function_name, env.log_stream, preamble + text)
        return InvokeOutcome(
            payload=payload, function_error=function_error, error_type=error_type, duration_ms=duration_ms,
            billed_ms=billed, memory_mb=spec.memory_mb, max_memory_used_mb=max_used, init_duration_ms=init_ms,
            log=text, environment_id=env.id, content_type=content_type,
        )


def _error_body(message: str, error_type: str | None) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type or "Runtime.Unknown"}).encode()
