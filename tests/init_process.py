"""A real init (PID 1's Runtime API server) in a process of its own, for tests that are both
its worker (protocol frames on a socket pair) and its runtime (HTTP to its port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

from lambdastack.runtime import protocol

_LAUNCHER = """
import os, socket, sys
from lambdastack.runtime import init, streaming
{settings}
channel = socket.socket(fileno=int(sys.argv[1]))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
pid = os.fork()
if pid == 0:
    os.execvp("sleep", ["sleep", "600"])  # stands in for the runtime process: the test is the runtime
init.serve(channel, listener, pid)
"""


class InitProcess:
    """`settings`: Python lines run before the init serves (`sys.argv[2:]` holds `args`)."""

    def __init__(self, settings: str = "", args: tuple[str, ...] = (), timeout: float = 10) -> None:
        self.worker, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER.format(settings=settings), str(theirs.fileno()), *args],
            pass_fds=[theirs.fileno()], stdout=subprocess.PIPE, start_new_session=True)
        theirs.close()
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.reader = protocol.FrameReader()
        self.frames: list[protocol.Frame] = []
        self.worker.settimeout(timeout)

    def frame(self) -> protocol.Frame:
        while not self.frames:
            data = self.worker.recv(1 << 20)
            assert data, "the init closed its channel"
            self.frames += self.reader.feed(data)
        return self.frames.pop(0)

    def send(self, kind: int, meta: dict[str, Any], body: bytes = b"") -> None:
        self.worker.sendall(protocol.encode(kind, meta, body))

    def close(self) -> None:
        self.worker.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, 9)  # the init, and the stand-in runtime it leaves behind
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
