"""Start a runtime's zygote and ask it for new environments."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import subprocess
from pathlib import Path
from typing import Any

import lambdastack

log = logging.getLogger("lambdastack.worker")

_PACKAGE_PARENT = str(Path(lambdastack.__file__).resolve().parent.parent)
# -I: ignore PYTHON* variables and the user site; -S: no site-packages; -B: write no bytecode.
# The configuration arrives on stdin, never on the command line: every environment forked
# from the zygote shows the zygote's command line in /proc, and it must not reveal host paths.
_BOOT = (
    "import sys, json; config = json.loads(sys.stdin.readline()); "
    "sys.path.insert(0, config.pop('package_parent')); "
    "from lambdastack.sandbox.zygote import main; main(config)"
)


class ZygoteError(RuntimeError):
    pass


class ZygoteClient:
    """One zygote process: a warm interpreter that forks environments on request."""

    def __init__(self, name: str, executable: Path, config: dict[str, Any]) -> None:
        self.name = name
        self.executable = executable
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.info: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, timeout: float = 30.0) -> dict[str, Any]:
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = dict(self.config, control_fd=theirs.fileno())
        # Started from the event loop's thread: the zygote dies with that thread (PDEATHSIG).
        self.proc = subprocess.Popen(
            [str(self.executable), "-I", "-S", "-B", "-c", _BOOT],
            pass_fds=[theirs.fileno()], stdin=subprocess.PIPE, close_fds=True,
        )
        theirs.close()
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(dict(config, package_parent=_PACKAGE_PARENT)).encode() + b"\n")
        self.proc.stdin.close()
        ready = self.listen(ours)
        try:
            self.info = await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            self.close()
            raise ZygoteError(f"the {self.name} zygote did not start within {timeout:.0f}s")
        return self.info

    def listen(self, sock: socket.socket) -> asyncio.Future[dict[str, Any]]:
        """Take requests to `sock`'s other end; the future resolves with its `ready` report."""
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self.sock = sock
        self._ready = self._loop.create_future()
        self._loop.add_reader(sock.fileno(), self._on_readable)
        return self._ready

    def _on_readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._fail(ZygoteError(f"the {self.name} zygote exited"))
                return
            message = json.loads(data)
            if "ready" in message:
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(message["ready"])
                continue
            future = self._waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(ZygoteError(message["error"]))
                else:
                    future.set_result(message)

    def _fail(self, error: Exception) -> None:
        if self._loop is not None and self.sock is not None:
            self._loop.remove_reader(self.sock.fileno())
        for future in [*self._waiting.values(), self._ready]:
            if future is not None and not future.done():
                future.set_exception(error)
        self._waiting.clear()
        self.sock = None

    @property
    def alive(self) -> bool:
        return self.sock is not None and self.proc is not None and self.proc.poll() is None

    async def spawn(
        self, spec: dict[str, Any], channel_fd: int, log_fd: int, extra_fds: list[int] | None = None
    ) -> int:
        """Fork a new environment; returns the PID of its init (as the zygote sees it)."""
        if self.sock is None or self._loop is None:
            raise ZygoteError(f"the {self.name} zygote is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._waiting[request_id] = future
        payload = json.dumps(dict(spec, id=request_id)).encode()
        socket.send_fds(self.sock, [payload], [channel_fd, log_fd, *(extra_fds or ())])
        reply = await future
        return int(reply["pid"])

    def kill(self, pid: int) -> None:
        """Kill an environment by its init's PID as the zygote sees it (no cgroup to kill it with)."""
        if self.sock is not None:
            try:
                self.sock.send(json.dumps({"kill": pid}).encode())
            except OSError:
                pass

    def host_pid(self, pid: int) -> int:
        """The host's number for environment `pid`, as the zygote numbered it. Under user
        namespaces the zygote lives in a PID namespace of its own, a child of the process
        started here, and numbers its environments there (the second field of their NSpid)."""
        if self.config.get("mode") != "userns" or self.proc is None:
            return pid
        for zygote in _children(self.proc.pid):
            for child in _children(zygote):
                if _namespace_pids(child)[1:2] == [pid]:
                    return child
        raise ProcessLookupError(f"no environment {pid} under the {self.name} zygote")

    def close(self) -> None:
        if self.sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                log.warning("zygote %s did not exit", self.name)
        self._fail(ZygoteError(f"the {self.name} zygote was closed"))


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _namespace_pids(pid: int) -> list[int]:
    """A process's PID in its PID namespace and each one above (the NSpid line, host first)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(n) for n in line.split()[1:]]
    except OSError:
        pass
    return []
