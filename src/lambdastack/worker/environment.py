"""One execution environment, as its worker sees it.

The worker talks to the environment's init over a stream socket (protocol frames) and
reads the function's output from a pipe. A built-in Python runtime with no extension beside
it takes its events on a second socket, straight from the worker (READY on it says so; see
runtime/python/channel_client.py): the init then only reports the runtime's exit, which is
held back until the runtime's socket is closed, so that what the runtime sent before it
exited is read first. It owns the environment's cgroup: it freezes the
environment between invocations, thaws it for the next, measures its memory, and kills it
(the whole cgroup) on timeout, on a crash, or when it is no longer wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import orjson

from lambdastack.runtime import protocol
from lambdastack.sandbox.cgroups import EnvCgroup
from lambdastack.worker import runtime_frames

log = logging.getLogger("lambdastack.worker")

Frame = tuple[int, dict[str, Any], bytes]

# A streamed response waiting to be relayed: past the high mark the channel is not read (so
# the init, then the runtime, are held back), below the low mark it is read again.
EARLY_HIGH_WATER = 4 * 1024 * 1024
EARLY_LOW_WATER = 1024 * 1024
EARLY_MAX_FRAMES = 4096  # many small chunks count too
# How long the runtime's exit waits for its socket to close (a child of the function's that
# inherited it could keep it open).
EXIT_HOLD_S = 0.1


class State(Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


class EnvironmentStartError(Exception):
    """lambdastack could not create an environment (a platform fault, not the function's)."""


class EnvironmentDied(Exception):
    """The environment stopped answering: its runtime or init exited, or it was killed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Channel(asyncio.Protocol):
    def __init__(self, env: Environment) -> None:
        self.env = env
        self.reader = protocol.FrameReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for frame in self.reader.feed(data):
            self.env._on_frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.env._on_channel_closed()


class _RuntimeChannel(_Channel):
    """The runtime's own socket: checked frames (see runtime_frames); its READY makes it the way in."""

    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        self.reader = runtime_frames.reader()

    def data_received(self, data: bytes) -> None:
        env = self.env
        try:
            try:
                frames = [runtime_frames.checked(frame) for frame in self.reader.feed(data)]
            except protocol.FrameTooLarge as e:
                env._on_frame(runtime_frames.too_large(e))
                env.kill("its result was too large")
                return
        except (runtime_frames.ProtocolViolation, ValueError) as e:
            log.warning("environment %s: the runtime broke the protocol (%s)", env.id, e)
            env.kill("the runtime broke the protocol")
            return
        for frame in frames:
            if frame[0] == protocol.READY:
                env.direct = True
            env._on_frame(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.env._on_runtime_channel_closed()


class Environment:
    def __init__(
        self,
        env_id: str,
        key: str,
        cgroup: EnvCgroup | None,
        log_stream: str,
        on_stray_output: Callable[[Environment, bytes], None] | None = None,
        remover: Callable[[EnvCgroup], None] | None = None,
        killer: Callable[[int], None] | None = None,
        on_killed: Callable[[Environment], None] | None = None,
    ) -> None:
        self.id = env_id
        self.key = key
        self.cgroup = cgroup
        self.log_stream = log_stream
        self.state = State.STARTING
        self.pid: int | None = None
        self.created = time.monotonic()
        self.last_used = self.created
        self.invocations = 0
        self.frozen = False
        self.prebuilt = False  # built ahead of demand, then assigned to its function
        self.provisioned = False  # kept initialized for provisioned concurrency
        self.extensions = 0  # external extensions registered in it (reported with READY)
        self.runtime_pid = 0  # the runtime's PID in the environment's own PID namespace
        self.quiescent = True  # everyone inside waits for their next event (see IDLE)
        self.last_request_id = ""
        self.freeze_when_quiescent = False
        self.init_ns: int | None = None
        self._channel: _Channel | None = None
        self.runtime_channel_socket: socket.socket | None = None  # attached with the init's channel
        self._runtime_channel: _RuntimeChannel | None = None
        self._runtime_open = False  # its socket is open: the runtime's exit waits for it to close
        self.direct = False  # events go to the runtime's own socket
        self._held_exit: Frame | None = None
        self._held_exit_timer: asyncio.TimerHandle | None = None
        self._log_fd: int | None = None
        self._output = bytearray()
        self._waiter: asyncio.Future[Frame] | None = None
        self._early: list[Frame] = []
        self._early_bytes = 0  # of the bodies in _early
        self._reading_paused = False
        self._loop = asyncio.get_running_loop()
        self._on_stray_output = on_stray_output
        self._remover = remover  # removes the cgroup once its processes are gone
        self._killer = killer  # kills by init's PID, where there is no cgroup
        self._on_killed = on_killed
        self.memory_mb = 0  # MemorySize committed to this environment's function, once assigned
        self.death: EnvironmentDied | None = None

    # -------------------------------------------------------------------- wiring

    def attach_log(self, log_fd: int) -> None:
        os.set_blocking(log_fd, False)
        self._log_fd = log_fd
        self._loop.add_reader(log_fd, self._read_output)

    async def attach_channel(self, channel_sock: Any) -> None:
        runtime_sock, self.runtime_channel_socket = self.runtime_channel_socket, None
        if runtime_sock is not None:  # first: an exit the init reports must find it open
            self._runtime_open = True
            _, runtime = await self._loop.create_unix_connection(lambda: _RuntimeChannel(self), sock=runtime_sock)
            self._runtime_channel = runtime
        _, proto = await self._loop.create_unix_connection(lambda: _Channel(self), sock=channel_sock)
        self._channel = proto

    def assigned(
        self, key: str, log_stream: str, on_stray_output: Callable[[Environment, bytes], None] | None
    ) -> None:
        """A pre-built environment now belongs to a function version."""
        self.key = key
        self.log_stream = log_stream
        self._on_stray_output = on_stray_output
        self.created = time.monotonic()  # its init starts now, whenever it was built

    def _read_output(self) -> None:
        fd = self._log_fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._loop.remove_reader(fd)
                os.close(fd)
                self._log_fd = None
                return
            self._output += chunk
            if self.state is State.IDLE and self._on_stray_output is not None:
                # Output between invocations (background threads): it goes to the stream as is.
                self._on_stray_output(self, bytes(self._output))
                self._output.clear()

    def flush_output(self) -> None:
        """Write what the environment printed outside any invocation to its log stream."""
        output = self.take_output()
        if output and self._on_stray_output is not None:
            self._on_stray_output(self, output)

    def take_output(self) -> bytes:
        """Everything the function wrote so far (its pipe drained first)."""
        self._read_output()
        out = bytes(self._output)
        self._output.clear()
        return out

    def flush_stray_output(self) -> None:
        """What the function wrote since its last invocation goes to its log stream as it is."""
        output = self.take_output()
        if output and self._on_stray_output is not None:
            self._on_stray_output(self, output)

    # -------------------------------------------------------------------- frames

    def _on_frame(self, frame: Frame) -> None:
        if frame[0] == protocol.EXITED and self._runtime_open and self._held_exit is None:
            # The runtime's last frames may still be on its own socket: they go first.
            self._held_exit = frame
            self._held_exit_timer = self._loop.call_later(EXIT_HOLD_S, self._release_exit)
            return
        if frame[0] == protocol.IDLE:
            # The runtime and every extension wait for their next event (after the last invocation?).
            self.quiescent = frame[1].get("request_id") == self.last_request_id
            if self.freeze_when_quiescent and self.state is State.IDLE:
                self.freeze()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_result(frame)
        elif frame[0] == protocol.EXITED and self.state is State.IDLE:
            self.kill("the runtime exited while idle")  # never hand it another event
        else:
            self._early.append(frame)
            self._early_bytes += len(frame[2])
            if self._early_bytes > EARLY_HIGH_WATER or len(self._early) > EARLY_MAX_FRAMES:
                self._pause_reading(True)

    def _on_channel_closed(self) -> None:
        self._release_exit()
        self._fail(EnvironmentDied("the environment's init exited"))

    def _on_runtime_channel_closed(self) -> None:
        self._runtime_open = False
        self._release_exit()

    def _release_exit(self) -> None:
        frame, self._held_exit = self._held_exit, None
        if self._held_exit_timer is not None:
            self._held_exit_timer.cancel()
            self._held_exit_timer = None
        if frame is not None:
            self._runtime_open = False  # what came on it was read; the exit is next
            self._on_frame(frame)

    def _fail(self, error: EnvironmentDied) -> None:
        if self.death is None:
            self.death = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._waiter = None
            waiter.set_exception(self.death)

    async def next_frame(self, timeout: float | None) -> Frame:
        if self._early:
            frame = self._early.pop(0)
            self._early_bytes -= len(frame[2])
            if (self._reading_paused and self._early_bytes < EARLY_LOW_WATER
                    and len(self._early) < EARLY_MAX_FRAMES // 4):
                self._pause_reading(False)
            return frame
        if self.death is not None:
            raise self.death
        waiter = self._waiter = self._loop.create_future()
        # A bare expiry callback: cheaper than asyncio.wait_for on every invocation.
        expiry = self._loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            return await waiter
        finally:
            self._waiter = None
            if expiry is not None:
                expiry.cancel()

    def _pause_reading(self, paused: bool) -> None:
        """Stop (or go on) reading both channels: unread frames wait in the sockets, not here."""
        if paused == self._reading_paused:
            return
        self._reading_paused = paused
        for channel in (self._channel, self._runtime_channel):
            transport = channel.transport if channel is not None else None
            if transport is None or transport.is_closing():
                continue
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def send(self, kind: int, meta: dict[str, Any] | None = None, body: bytes = b"") -> None:
        if self._channel is None or self._channel.transport is None or self.death is not None:
            raise self.death or EnvironmentDied("the environment is not connected")
        if kind == protocol.INVOKE:
            self.quiescent = self.extensions == 0
            self.last_request_id = meta["request_id"] if meta else ""
        raw = orjson.dumps(meta) if meta else b""  # the same JSON protocol.encode writes, faster
        channel = self._channel
        if self.direct and kind == protocol.INVOKE:
            if not self._runtime_open or self._runtime_channel is None or self._runtime_channel.transport is None:
                raise EnvironmentDied("the runtime is gone")
            channel = self._runtime_channel
        assert channel.transport is not None
        channel.transport.write(protocol.HEADER.pack(kind, len(raw), len(body)) + raw + body)

    # -------------------------------------------------------------------- control

    def freeze_when_idle(self) -> None:
        """Freeze now, or as soon as the extensions are done with the last invocation."""
        if self.state is State.IDLE:
            if self.quiescent:
                self.freeze()
            else:
                self.freeze_when_quiescent = True

    def freeze(self) -> None:
        self.freeze_when_quiescent = False
        if self.cgroup is not None and not self.frozen:
            with contextlib.suppress(OSError):
                self.cgroup.freeze()
                self.frozen = True

    def thaw(self) -> None:
        self.freeze_when_quiescent = False
        if self.frozen and self.cgroup is not None:
            with contextlib.suppress(OSError):
                self.cgroup.thaw()
            self.frozen = False

    def max_memory_mb(self) -> int:
        if self.cgroup is None:
            return 0
        try:
            return -(-self.cgroup.peak_memory_bytes() // (1024 * 1024))
        except OSError:
            return 0

    def oom_killed(self) -> bool:
        if self.cgroup is None:
            return False
        try:
            return self.cgroup.oom_kills() > 0
        except OSError:
            return False

    def signal_runtime(self, signum: int) -> None:
        """Signal the runtime process (found by its PID inside the environment's namespace)."""
        if self.cgroup is None or not self.runtime_pid:
            return
        for pid in self.cgroup.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    nspids = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
                if nspids and int(nspids[-1]) == self.runtime_pid and pid != self.pid:
                    os.kill(pid, signum)
            except (OSError, ValueError):
                continue

    def kill(self, reason: str = "killed") -> None:
        """Kill every process of the environment and release what it holds."""
        if self.state is State.DEAD:
            return
        self.state = State.DEAD
        if self.cgroup is not None:
            self.cgroup.kill()
            if self._remover is not None:
                self._remover(self.cgroup)
        elif self.pid is not None and self._killer is not None:
            # No cgroup (userns or process isolation): init is PID 1 of its own PID namespace
            # (or leads its own process group); killing it kills everything in it.
            self._killer(self.pid)
        self._fail(EnvironmentDied(reason))
        if self._on_killed is not None:
            self._on_killed(self)
        if self._channel is not None and self._channel.transport is not None:
            self._channel.transport.close()
        runtime, self._runtime_channel = self._runtime_channel, None
        if runtime is not None and runtime.transport is not None:
            runtime.transport.close()
        if self.runtime_channel_socket is not None:
            self.runtime_channel_socket.close()
            self.runtime_channel_socket = None
        if self._held_exit_timer is not None:
            self._held_exit_timer.cancel()
            self._held_exit_timer = None
        if self._log_fd is not None:
            self._loop.remove_reader(self._log_fd)
            with contextlib.suppress(OSError):
                os.close(self._log_fd)
            self._log_fd = None


def _expire(waiter: asyncio.Future[Frame]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
