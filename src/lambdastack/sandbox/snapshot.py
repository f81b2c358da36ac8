"""SnapStart copies: new execution environments forked from an initialized one.

A published version with SnapStart is initialized once, in a *template* environment whose
runtime runs the function's init code and its before-snapshot hooks, then waits here
(`serve_copies`) on a control socket to the worker. Each request makes a copy:

  template runtime ──fork──▶ helper: joins the copy's cgroups, unshare(PID, mnt, net, ipc, uts,
                              │       cgroup), forks, and exits (the copy is re-parented to the
                              │       template, which reaps it)
                              └─fork─▶ PID 1 of the copy: its own /proc, /tmp and `lo`,
                                        127.0.0.1:9001; forks the copy's runtime, gives up the
                                        template's capabilities, takes the environment filter
                                        and serves the Runtime API (`init.serve`)
                                        └─fork─▶ the copy's runtime: the same, then returns
                                                 from `serve_copies` into the Python runtime,
                                                 which runs the after-restore hooks and asks
                                                 for its first event

So a copy costs three forks of an initialized process, not an init. A copy may also be made
ahead of demand: its runtime then waits on a "go" pipe before the after-restore hooks, and
taking it into service costs one byte written to that pipe. Its memory is shared
with the template until written. What a fork cannot carry over is not carried over: threads
the init code started, and connections it opened, are shared or gone, as after a restore
from a snapshot on Lambda (where the after-restore hooks re-create them).

Requests are JSON on a SOCK_SEQPACKET socket, like a zygote's: `{"id", "tmp_mb", "go",
"runtime_channel"}` with the copy's channel, its log pipe, its runtime's own socket to the
worker (if "runtime_channel"; see runtime/python/channel_client.py), the read end of its go
pipe (if "go") and one open `cgroup.procs` file per hierarchy attached, answered with `{"id", "pid"}` (the copy's PID 1
as the template sees it); `{"kill": pid}` kills a copy where there is no cgroup to kill it with.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import traceback
from typing import Any, Callable, Dict, List, Optional, Set, Union

from lambdastack.runtime import extensions, init, init_rehearsal
from lambdastack.sandbox import jail, libc

RUNTIME_API_PORT = 9001
_MAX_FDS = 16


class CopyRuntime:
    """What a copy's runtime process knows when it returns from `serve_copies`."""

    def __init__(self, request: Dict[str, Any], go_fd: int, runtime_fd: int = -1) -> None:
        self.request = request
        self.go_fd = go_fd  # -1: restore at once
        self.runtime_fd = runtime_fd  # its own socket to the worker, -1 if none

    def wait_for_go(self, rehearse: Optional[Callable[[], object]] = None) -> None:
        """Block until the worker takes this copy into service (or exit if it never will).

        A copy made ahead of demand first `rehearse`s its runtime's part in an invocation.
        """
        if self.go_fd < 0:
            return
        if rehearse is not None:
            rehearse()
        try:
            go = os.read(self.go_fd, 1)
        finally:
            os.close(self.go_fd)
        if not go:
            os._exit(0)  # discarded before it was used


class _Server:
    def __init__(self, control: socket.socket, seccomp_bpf: Optional[bytes]) -> None:
        self.control = control
        self.seccomp_bpf = seccomp_bpf
        self.copies: Set[int] = set()
        self.helpers: Set[int] = set()

    def reap(self, *_: Any) -> None:
        for pid in list(self.helpers):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.helpers.discard(pid)
        for pid in list(self.copies):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.copies.discard(pid)

    def kill(self, pid: int) -> None:
        if pid in self.copies:
            try:
                os.kill(pid, signal.SIGKILL)  # PID 1 of the copy: its whole PID namespace goes
            except ProcessLookupError:
                pass

    def make(self, request: Dict[str, Any], fds: List[int]) -> "Union[int, CopyRuntime]":
        """Fork the helper: the copy's PID 1 here, a CopyRuntime in the copy's runtime process."""
        if len(fds) < 2:
            raise ValueError("a copy request carries its channel and log pipe")
        report_r, report_w = os.pipe()
        helper = os.fork()
        if helper == 0:
            os.close(report_r)
            try:
                return _helper(self, request, fds, report_w)
            except BaseException:
                _write_all(report_w, json.dumps({"error": traceback.format_exc()[-2000:]}).encode())
                os._exit(70)
        os.close(report_w)
        self.helpers.add(helper)  # reaped when it exits (it does not wait for us)
        try:
            # One write of less than PIPE_BUF: read it whole, without waiting for the pipe
            # to close (which takes the helper's exit, and its child closing its copy).
            report = json.loads(_read_once(report_r) or b'{"error": "the copy helper died"}')
        finally:
            os.close(report_r)
        if "error" in report:
            raise RuntimeError(report["error"].strip().splitlines()[-1])
        pid = int(report["pid"])
        self.copies.add(pid)
        return pid


def _helper(server: _Server, request: Dict[str, Any], fds: List[int], report_w: int) -> CopyRuntime:
    """The short-lived helper: into the copy's cgroups and new namespaces, then fork PID 1."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    channel_fd, log_fd = fds[0], fds[1]
    rest = list(fds[2:])
    runtime_fd = rest.pop(0) if request.get("runtime_channel") else -1
    go_fd = rest.pop(0) if request.get("go") else -1
    tmp_disk = rest.pop(0) if request.get("tmp_disk") else -1
    cgroup_fds = rest
    for fd in cgroup_fds:
        os.write(fd, b"0")  # "0": the writing process itself
        os.close(fd)
    jail.unshare_copy()
    pid1 = os.fork()
    if pid1:
        _write_all(report_w, json.dumps({"pid": pid1}).encode())
        os._exit(0)
    os.close(report_w)
    try:
        return _pid1(server, request, channel_fd, log_fd, go_fd, runtime_fd, tmp_disk)
    except BaseException:
        traceback.print_exc()
        os._exit(70)


def _pid1(server: _Server, request: Dict[str, Any], channel_fd: int, log_fd: int, go_fd: int,
          runtime_fd: int = -1, tmp_disk: int = -1) -> CopyRuntime:
    # (Not jail.die_with_parent(): its parent, the helper, exits at once. A copy outlives its
    # template, like any environment: the worker ends it through its cgroup or the template.)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    jail.enter_copy(int(request["tmp_mb"]), tmp_disk)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", RUNTIME_API_PORT))
    listener.listen(64)
    runtime_pid = os.fork()
    if runtime_pid == 0:
        # The copy's runtime: the function's process as it was after init.
        server.control.close()
        os.close(channel_fd)
        listener.close()
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        jail.seal_copy(server.seccomp_bpf)
        if runtime_fd >= 0:
            os.set_inheritable(runtime_fd, False)  # the function's own children never get it
        return CopyRuntime(request, go_fd, runtime_fd)
    os.close(log_fd)
    if runtime_fd >= 0:
        os.close(runtime_fd)  # the runtime's: events go to it straight from the worker
    if go_fd >= 0:
        os.close(go_fd)
    server.control.close()
    channel_fd, listen_fd = jail.keep_only_fds([channel_fd, listener.detach()])
    jail.seal_copy(server.seccomp_bpf, dumpable=False)
    env = os.environ
    registry = extensions.Extensions({
        "functionName": env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        "functionVersion": env.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
        "handler": env.get("_HANDLER", ""),
    }, 0)
    if go_fd >= 0:
        init_rehearsal.rehearse()  # made ahead of demand: nothing waits for this copy yet
    init.serve(socket.socket(fileno=channel_fd), socket.socket(fileno=listen_fd), runtime_pid, registry, set(),
               request.get("credentials"))  # a copy's own, fresher than what its template was given
    os._exit(0)


def serve_copies(
    control_fd: int, seccomp_bpf: Optional[bytes], ready: Dict[str, Any],
    rehearse: Optional[Callable[[], object]] = None,
) -> CopyRuntime:
    """Report the template ready, then make copies until the worker goes away.

    Returns only in a copy's runtime process; the template itself exits with the worker.
    `rehearse` is the runtime's rehearsal of an invocation (see runtime/python/rehearsal.py).
    """
    control = socket.socket(fileno=control_fd)
    server = _Server(control, seccomp_bpf)
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)  # copies come back to us when their helper exits
    signal.signal(signal.SIGCHLD, server.reap)
    control.send(json.dumps({"ready": ready}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, _MAX_FDS)
        except InterruptedError:
            continue
        if not message:
            os._exit(0)  # the worker is gone
        request = json.loads(message)
        reply: Dict[str, Any] = {"id": request.get("id")}
        copy: Optional[CopyRuntime] = None
        try:
            if "kill" in request:
                server.kill(int(request["kill"]))
                continue
            made = server.make(request, fds)
            if isinstance(made, CopyRuntime):
                copy = made
                copy.wait_for_go(rehearse)
                return copy  # in the copy's runtime process
            reply["pid"] = made
        except Exception as e:  # a bad request must not end the template
            reply["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            if copy is None:
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        control.send(json.dumps(reply).encode())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_once(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 65536)
        except InterruptedError:
            continue
