"""SnapStart: environments of a published version forked from one initialized template.

When a version with `SnapStart={"ApplyOn": "PublishedVersions"}` is published, one
*template* environment of it runs the function's init and its before-snapshot hooks, then
waits (see sandbox/snapshot.py). Every cold start of the version after that is a *copy*
of the template: its own cgroup and namespaces, the same memory (shared until written),
the after-restore hooks, and its first event, with `Restore Duration` instead of
`Init Duration` in its REPORT line.

Copies are also made ahead of demand (as many per template as `--prebuilt` says): such a
copy waits, forked and in its namespaces, before its after-restore hooks; a cold start then
costs a byte written to its "go" pipe, the hooks and the first event.

The template lives as long as the version (or the server); a template lost to a restart
is made again on the version's next cold start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdastack import errors
from lambdastack.network.host import NetworkUnavailable
from lambdastack.runtime import protocol
from lambdastack.sandbox import jail
from lambdastack.worker import logformat
from lambdastack.worker.environment import Environment, EnvironmentDied, EnvironmentStartError, State
from lambdastack.worker.spec import EnvironmentSpec
from lambdastack.worker.zygotes import ZygoteClient, ZygoteError

if TYPE_CHECKING:
    from lambdastack.worker.pool import Pool
    from lambdastack.worker.worker import Worker

log = logging.getLogger("lambdastack.worker")

# As on Lambda: init for a snapshot may take 130 s or the function's timeout, whichever is
# longer; a restore (with the after-restore hooks) 10 s.
TEMPLATE_INIT_MIN_S = 130.0
RESTORE_TIMEOUT_S = 10.0
INITIALIZATION_TYPE = "snap-start"


class TemplateFailed(Exception):
    """The template's init failed: the version cannot be made Active."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class _CopyServer(ZygoteClient):
    """The template's control socket: asks it for copies, as one asks a zygote for environments."""

    def __init__(self, name: str) -> None:
        super().__init__(name, Path("/"), {})

    @property
    def alive(self) -> bool:
        return self.sock is not None


@dataclass
class _Copy:
    """A copy made ahead of demand, waiting on its go pipe."""

    env: Environment
    go: int  # the write end of its go pipe (-1: made on demand, restoring at once)


@dataclass
class Template:
    key: str
    env: Environment
    server: _CopyServer
    init_ms: float
    spec: EnvironmentSpec
    ready: list[_Copy] = field(default_factory=list)
    refilling: bool = False
    # The AWS_CONTAINER_AUTHORIZATION_TOKEN its copies inherit: their inits expect it.
    authorization: str | None = None


class SnapStart:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.templates: dict[str, Template] = {}
        self._making: dict[str, asyncio.Future[Template]] = {}

    def applies(self, spec: EnvironmentSpec) -> bool:
        """Whether cold starts of `spec` are copies (namespaces are what a copy is made of)."""
        return spec.snapstart and self.worker.config.isolation != "process"

    # ------------------------------------------------------------------ templates

    async def prepare(self, spec: EnvironmentSpec) -> Template:
        """The version's template, made (its init run) if there is none yet."""
        template = self.templates.get(spec.key)
        if template is not None and template.server.alive and template.env.state is not State.DEAD:
            return template
        making = self._making.get(spec.key)
        if making is None:
            making = self._making[spec.key] = asyncio.ensure_future(self._make(spec))
            making.add_done_callback(lambda _: self._making.pop(spec.key, None))
        return await asyncio.shield(making)

    async def _make(self, spec: EnvironmentSpec) -> Template:
        worker = self.worker
        zygote = await worker.zygotes.for_spec(spec)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request: dict[str, Any] = {
            "tmp_mb": spec.ephemeral_mb,
            "task_dir": str(spec.code_dir) if spec.code_dir else None,
            "opt_dirs": [str(d) for d in spec.opt_dirs],
        }
        try:
            # Its runtime runs the init and serves copies; each copy gets a socket of its own.
            env, channel = await worker._start(zygote, spec.memory_mb, request, [theirs.fileno()],
                                               runtime_channel=False)
        finally:
            theirs.close()
        assignment = worker._assignment(env, spec, INITIALIZATION_TYPE)
        assignment["runtime"]["template"] = True
        server = _CopyServer(f"{spec.function_name}:{spec.version}")
        ready = server.listen(ours)
        await worker._send_assignment(env, channel, assignment, None)
        timeout = max(TEMPLATE_INIT_MIN_S, float(spec.timeout_s))
        try:
            await asyncio.wait_for(asyncio.shield(ready), timeout)
        except TimeoutError:
            output = env.take_output()
            env.kill("init timed out")
            server.close()
            self._log(spec, env, output + logformat.init_report_line(timeout * 1000, "init", "timeout").encode())
            raise TemplateFailed(f"Init timed out after {timeout:.0f} seconds.", "FunctionError.InitTimeout")
        except ZygoteError:
            failure = await self._failure(spec, env)
            server.close()
            raise failure
        init_ms = (time.monotonic() - env.created) * 1000
        self._log(spec, env, env.take_output() + logformat.init_report_line(init_ms, "init", "success").encode())
        template = Template(spec.key, env, server, init_ms, spec,
                            authorization=(assignment.get("credentials") or {}).get("authorization"))
        old = self.templates.pop(spec.key, None)
        if old is not None:
            self._discard(old)
        self.templates[spec.key] = template
        self._refill(template)
        log.info("SnapStart template of %s:%s ready (init %.0f ms)", spec.function_name, spec.version, init_ms)
        return template

    async def _failure(self, spec: EnvironmentSpec, env: Environment) -> TemplateFailed:
        """Why the template's runtime went away: its init error, or its exit."""
        error_type, message = "Runtime.Unknown", "The runtime exited during init."
        try:
            while True:
                kind, meta, body = await env.next_frame(2.0)
                if kind == protocol.INIT_ERROR:
                    error_type = meta.get("error_type") or error_type
                    try:
                        message = json.loads(body).get("errorMessage") or message
                    except (ValueError, AttributeError):
                        pass
                    break
                if kind == protocol.EXITED:
                    break
        except (EnvironmentDied, TimeoutError):
            pass
        output = env.take_output()
        env.kill("init failed")
        init_ms = (time.monotonic() - env.created) * 1000
        self._log(spec, env, output + logformat.init_report_line(init_ms, "init", "error", error_type).encode())
        return TemplateFailed(f"{error_type}: {message}"[:1000], "FunctionError.RuntimeInitError")

    def _log(self, spec: EnvironmentSpec, env: Environment, text: bytes) -> None:
        self.worker.log_sink(spec.account, spec.region, spec.function_name, env.log_stream, text)

    def retire(self, key: str) -> None:
        template = self.templates.pop(key, None)
        if template is not None:
            self._discard(template)

    def _discard(self, template: Template) -> None:
        for copy in template.ready:
            self._drop(copy)
        template.ready.clear()
        template.server.close()
        template.env.kill("retired")

    @staticmethod
    def _drop(copy: _Copy) -> None:
        copy.env.kill("not needed")  # (which closes its channel)
        os.close(copy.go)

    def close(self) -> None:
        for template in self.templates.values():
            self._discard(template)
        self.templates.clear()

    # ------------------------------------------------------------------ copies

    async def _copy(self, template: Template, ahead: bool) -> _Copy:
        """Fork a copy of `template`; one made `ahead` of demand waits for its go.

        With a network, every copy waits for its go until the worker has plugged it in (its
        after-restore hooks may connect somewhere).
        """
        spec = template.spec
        network = self.worker.network
        waits = ahead or (network is not None and network.enabled)
        go_r, go_w = os.pipe() if waits else (-1, -1)
        request: dict[str, Any] = {"tmp_mb": spec.ephemeral_mb, "go": waits}
        platform = self.worker.platform_variables(spec) if self.worker.platform_variables else None
        if platform is not None and platform.credentials is not None and template.authorization:
            # Fresh credentials, behind the token the copy's environment has from its template.
            request["credentials"] = dict(platform.credentials, authorization=template.authorization)
        extra = [go_r] if waits else []
        try:
            if self.worker.tmp_disks is not None:
                extra.append(await self.worker.tmp_disks.take(spec.ephemeral_mb))  # its own /tmp, on disk
                request["tmp_disk"] = True
            env, channel = await self.worker._start(template.server, spec.memory_mb, request, extra,
                                                    cgroups_by_fd=True)
        except BaseException:
            if waits:
                os.close(go_w)
            raise
        finally:
            for fd in extra:
                os.close(fd)
        channel.setblocking(False)
        await env.attach_channel(channel)
        copy = _Copy(env, go_w)
        if network is not None:
            try:
                net = network.lease(env.id)
                if net is not None:
                    await asyncio.to_thread(jail.plug_in, self._host_pids(env), net)
            except (OSError, NetworkUnavailable) as e:
                self._drop(copy)
                raise EnvironmentStartError(f"could not plug a copy into the network: {e}")
        if not ahead and copy.go >= 0:
            _go(copy)
        return copy

    @staticmethod
    def _host_pids(env: Environment) -> list[int]:
        """The copy's processes, as the host numbers them (its cgroup knows them)."""
        return env.cgroup.pids() if env.cgroup is not None else []

    def _refill(self, template: Template) -> None:
        if self.worker.config.prebuilt > 0 and not template.refilling:
            self.worker._spawn_task(self._fill(template))

    async def _fill(self, template: Template) -> None:
        template.refilling = True
        try:
            while (len(template.ready) < self.worker.config.prebuilt and not self.worker._stopping
                   and self.templates.get(template.key) is template and template.server.alive):
                try:
                    copy = await self._copy(template, ahead=True)
                except Exception as e:
                    log.warning("could not make a copy of %s ahead of demand: %s", template.key, e)
                    return
                if self.templates.get(template.key) is not template:
                    self._drop(copy)
                    return
                template.ready.append(copy)
        finally:
            template.refilling = False

    def _take_ready(self, template: Template) -> _Copy | None:
        while template.ready:
            copy = template.ready.pop(0)
            if copy.env.death is None and copy.env.state is not State.DEAD:
                return copy
            self._drop(copy)
        return None

    async def cold_start(self, spec: EnvironmentSpec, pool: Pool) -> tuple[Environment, float, bytes]:
        """A copy of the version's template, restored and waiting for its first event.

        Returns it with its restore duration (ms) and what it printed while restoring.
        """
        worker = self.worker
        try:
            template = await self.prepare(spec)
        except TemplateFailed as e:
            raise errors.SnapStartException(f"Lambda could not initialize the function's snapshot: {e.reason}")
        worker._scale_out(spec)
        charge = worker.memory.expected_mb(spec.key, spec.memory_mb)
        await worker._make_room(charge)
        try:
            copy = self._take_ready(template) or await self._copy(template, ahead=False)
        except BaseException:
            worker.memory.release(charge)
            worker._room.set()
            raise
        env = copy.env
        worker.refill_later(env, lambda: self._refill(template))  # not beside this cold start
        env.memory_mb = charge
        today = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        env.assigned(spec.key, f"{today}/[{spec.version}]{env.id}", worker._stray_output(spec))  # restore starts
        if copy.go >= 0:
            _go(copy)
        pool.add(env)
        failure = await worker._initialize(env, spec, RESTORE_TIMEOUT_S)
        if failure is not None:
            pool.discard(env)
            timed_out = failure.error_type == "Sandbox.Timedout"
            self._log(spec, env, failure.log + logformat.restore_report_line(
                failure.init_ms, "timeout" if timed_out else "error", None if timed_out else failure.error_type,
            ).encode())
            if timed_out:
                raise errors.SnapStartTimeout("Lambda couldn't restore the snapshot within the timeout limit.")
            raise errors.SnapStartException(
                "The afterRestore() runtime hook encountered an error. For more information, check the Amazon "
                "CloudWatch logs."
            )
        restore_ms = (env.init_ns or 0) / 1e6
        return env, restore_ms, env.take_output() + logformat.restore_report_line(restore_ms).encode()


def _go(copy: _Copy) -> None:
    """Let a copy that waits for its go run its after-restore hooks."""
    try:
        os.write(copy.go, b"g")
    except OSError:
        pass  # it died waiting: its init reports that next
    os.close(copy.go)
    copy.go = -1
