"""The zygote: a warm interpreter of one runtime that forks new execution environments.

A new environment costs a fork, not an interpreter start: the zygote has the runtime
client, the init and the standard modules they use already imported, and the base root
already mounted in its private namespace. For each spawn request from the worker it

  zygote ──unshare(PID) + fork──▶ PID 1 of a new PID namespace  (`_environment`)
                                    │ join cgroups, unshare mnt/net/ipc/uts/cgroup,
                                    │ plug eth0 into the server's bridge (if any),
                                    │ mount /tmp /var/task /opt /proc, pivot, lo up,
                                    │ listen on 127.0.0.1:9001
                                    ├──fork──▶ the runtime (`_runtime`): drop to the function's
                                    │          user, seccomp, then the Python runtime or exec
                                    └─ drops to the init user, seccomp, serves the Runtime API

Requests arrive on a SOCK_SEQPACKET socket (`control_fd`) as JSON with two descriptors attached:
the environment's end of its channel to the worker, and the write end of its log pipe.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

from lambdastack.runtime import extensions, init, init_rehearsal, protocol
from lambdastack.sandbox import clone_into, jail, libc, seccomp
from lambdastack.sandbox import snapshot as copies

RUNTIME_API_PORT = 9001


class Zygote:
    def __init__(self, config: Dict[str, Any]) -> None:
        self.config = config
        self.mode: str = config["mode"]  # namespaces | userns | process
        self.control = socket.socket(fileno=int(config["control_fd"]))
        self.seccomp_bpf: Optional[bytes] = None
        self.template_bpf: Optional[bytes] = None  # a SnapStart template's (seccomp.TEMPLATE_ALLOWED)
        self.pidns_fd = -1
        self.rehearse: Optional[Callable[[], object]] = None  # see runtime/python/rehearsal.py

    # ------------------------------------------------------------------ start-up

    def start(self) -> Dict[str, Any]:
        jail.die_with_parent()
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        report: Dict[str, Any] = {"pid": os.getpid(), "python": sys.version.split()[0]}
        for module in self.config.get("preload", ()):
            mod = importlib.import_module(module)
            hook = getattr(mod, "preload", None)
            if callable(hook):
                hook()
        if self.config.get("rehearsal"):
            self.rehearse = importlib.import_module(self.config["rehearsal"]).rehearse
        try:
            self.seccomp_bpf = seccomp.compile_filter()
            self.template_bpf = seccomp.compile_filter(template=True)
            report["seccomp"] = True
        except OSError as e:
            report["seccomp"] = False
            report["seccomp_error"] = str(e)
        if self.mode != "process":
            jail.prepare_zygote(userns=self.mode == "userns")
            if self.mode == "userns":
                # The host's PID namespace belongs to the initial user namespace: we could not
                # setns() back into it after each spawn. Live in a PID namespace of our own.
                self._become_pid1()
            binds = [(h, i) for h, i in self.config.get("binds", ())]
            hidden = list(self.config.get("hidden", ()))
            if self.config.get("bind_own_python"):
                own_binds, own_hidden = python_layout()
                binds += own_binds
                hidden += own_hidden
            jail.build_base_root(self.config["base_root"], binds, hidden, self.config.get("etc") or {})
            self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
        report["bounding_set_empty"] = jail.seal_zygote()
        signal.signal(signal.SIGCHLD, lambda *_: self._reap())
        gc.collect()
        if hasattr(gc, "freeze"):
            gc.freeze()  # keep the collector from touching (and copying) inherited pages
        return report

    def _become_pid1(self) -> None:
        libc.unshare(libc.CLONE_NEWPID)
        child = os.fork()
        if child:
            # This process only waits; the zygote carries on as PID 1 of the new namespace.
            _, status = os.waitpid(child, 0)
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
        jail.die_with_parent()

    def serve(self) -> None:
        self.control.send(json.dumps({"ready": self.start()}).encode())
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.control, 1 << 20, 4)
            except InterruptedError:
                continue
            if not message:
                os._exit(0)  # the worker is gone
            request = json.loads(message)
            reply: Dict[str, Any] = {"id": request.get("id")}
            try:
                if "kill" in request:
                    self.kill(int(request["kill"]))
                    continue
                reply["pid"] = self.spawn(request, fds)
            except Exception as e:  # the zygote itself must survive a bad request
                reply["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.control.send(json.dumps(reply).encode())

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def kill(self, pid: int) -> None:
        """Kill an environment we forked (used where there is no cgroup to kill it with).

        Its init is PID 1 of its own PID namespace, so killing it kills everything in it;
        without namespaces, init leads a process group of its own.
        """
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # ------------------------------------------------------------------ one environment

    def spawn(self, spec: Dict[str, Any], fds: List[int]) -> int:
        if len(fds) not in (2, 3):
            raise ValueError("a spawn request carries two descriptors (channel, log), and a third: a SnapStart "
                             "template's control socket, or the runtime's own channel to the worker")
        namespaced = self.mode != "process"
        if namespaced:
            libc.unshare(libc.CLONE_NEWPID)  # our next child is PID 1 of a new namespace
        # Born in its cgroup where the host allows (cgroup v2), else moved into it (jail.join_cgroups).
        pid = clone_into.fork_into(spec["cgroup_dir"]) if spec.get("cgroup_dir") else None
        if pid == 0:
            spec["cgroup_procs"] = ()
        elif pid is None:
            pid = os.fork()
        if pid == 0:
            channel_fd, log_fd = fds[:2]
            third = fds[2] if len(fds) > 2 else -1
            runtime_fd, control_fd = (third, -1) if spec.get("runtime_channel") else (-1, third)
            try:
                self._environment(spec, channel_fd, log_fd, control_fd, runtime_fd)
            except BaseException:
                try:
                    os.write(channel_fd, protocol.encode(protocol.SETUP_ERROR, {"error": traceback.format_exc()}))
                finally:
                    os._exit(70)
            os._exit(0)
        if namespaced:
            libc.setns(self.pidns_fd, libc.CLONE_NEWPID)  # and the one after that is ours again
        return pid

    def _environment(self, spec: Dict[str, Any], channel_fd: int, log_fd: int, control_fd: int = -1,
                     runtime_fd: int = -1) -> None:
        """PID 1 of the new environment (still privileged until `become_init`).

        The environment is built before it needs to know its function, which arrives as an
        ASSIGN frame on the channel: right away for an environment built on demand (its code
        was bound before the pivot), or later for one built ahead of demand, with the code as
        a detached read-only mount tree: that is how a pre-built environment is taken into
        service in a fraction of a millisecond.

        A SnapStart template (see sandbox/snapshot.py) also gets `control_fd`, which only its
        runtime keeps. Other environments may get `runtime_fd`, a socket to the worker that the
        built-in Python runtime uses instead of the Runtime API when nothing else in the
        environment needs the init in between (see runtime/python/channel_client.py).
        """
        jail.die_with_parent()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.control.close()
        if self.pidns_fd >= 0:
            os.close(self.pidns_fd)
        os.setsid()
        jail.join_cgroups(spec.get("cgroup_procs", ()))
        port = RUNTIME_API_PORT
        if self.mode != "process":
            net = spec.get("net")
            host_netns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC) if net else -1
            jail.unshare_environment()
            if net:
                try:
                    jail.connect_network(net, host_netns)
                finally:
                    os.close(host_netns)
            root = spec.get("root") or self.config["base_root"]
            jail.enter_root(root, int(spec["tmp_mb"]), spec.get("task_dir"), spec.get("opt_dirs") or (),
                            own_root=bool(spec.get("root")), etc_from=self.config["base_root"] + "/etc")
            jail.loopback_up()
        else:
            port = 0
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        api = "127.0.0.1:%d" % listener.getsockname()[1]
        go_r, go_w = os.pipe()
        runtime_pid = os.fork()
        if runtime_pid == 0:
            code = 127
            try:
                self._runtime(spec, go_r, log_fd, control_fd, runtime_fd)
            except SystemExit as e:  # the function called sys.exit(): exit with its status
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()  # into the function's log: the runtime could not start
            finally:
                os._exit(code)
        os.close(go_r)
        if control_fd >= 0:
            os.close(control_fd)
        channel = socket.socket(fileno=channel_fd)
        if spec.get("prebuilt"):
            init_rehearsal.rehearse()  # while nothing waits for this environment
        assignment = self._receive_assignment(channel, int(spec["tmp_mb"]))
        env = assignment["env"]
        env["AWS_LAMBDA_RUNTIME_API"] = api
        credentials = assignment.pop("credentials", None)  # the init serves them; nobody else holds the document
        if credentials:
            env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://%s%s" % (api, init.CREDENTIALS_PATH)
        # Extensions start before the runtime does, as on Lambda.
        # (Without namespaces there is no /opt of the environment's own: no extensions.)
        # A SnapStart template runs none: its copies are where invocations happen.
        template = bool(assignment["runtime"].get("template"))
        paths = _extensions() if self.mode != "process" and not template else []
        extension_pids = {self._start_extension(path, spec, assignment, log_fd) for path in paths}
        os.close(log_fd)
        if runtime_fd >= 0:
            # Events go straight to a built-in Python runtime when no extension needs to see them.
            assignment["runtime"]["channel"] = assignment["runtime"]["kind"] == "python" and not extension_pids
            os.close(runtime_fd)
        _write_all(go_w, json.dumps(assignment).encode())
        os.close(go_w)
        channel_fd, listen_fd = jail.keep_only_fds([channel.detach(), listener.detach()])
        ids = spec.get("ids") or {}
        jail.become_init(ids.get("init_uid"), ids.get("init_gid"), self.seccomp_bpf)
        registry = extensions.Extensions({
            "functionName": env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            "functionVersion": env.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
            "handler": env.get("_HANDLER", ""),
        }, len(extension_pids))
        init.serve(socket.socket(fileno=channel_fd), socket.socket(fileno=listen_fd), runtime_pid,
                   registry, extension_pids, credentials)

    def _start_extension(self, path: str, spec: Dict[str, Any], assignment: Dict[str, Any], log_fd: int) -> int:
        """Start one external extension, as unprivileged and confined as the runtime."""
        pid = os.fork()
        if pid:
            return pid
        try:
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            jail.keep_only_fds([])
            os.chdir("/")
            jail.set_limits(assignment.get("rlimits") or {})
            ids = spec.get("ids") or {}
            jail.become_function(ids.get("uid"), ids.get("gid"), self.seccomp_bpf)
            os.execve(path, [path], assignment["env"])
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(127)

    def _receive_assignment(self, channel: socket.socket, tmp_mb: int) -> Dict[str, Any]:
        """Wait for this environment's function; mount its code (if it comes as a mount tree)
        and its /tmp (a disk of EphemeralStorage MB, if it comes as one; else the tmpfs gets
        its size, if the environment was built before the size was known)."""
        kind, meta, _, fds = protocol.read_frame(channel)
        try:
            if kind != protocol.ASSIGN:
                raise RuntimeError("expected an ASSIGN frame, got %s" % protocol.NAMES.get(kind, kind))
            targets = list(meta.get("mounts") or ())
            mounts = {targets[i]: fd for i, fd in enumerate(fds[:len(targets)])}
            for target, fd in mounts.items():
                if not target.startswith("/mnt/"):
                    jail.attach_tree(fd, target)  # the code, read-only; a disk-backed /tmp over the tmpfs
            shared = {target: fd for target, fd in mounts.items() if target.startswith("/mnt/")}
            if shared:
                jail.attach_under_mnt(shared)  # shared file systems, read-write
            if self.mode != "process" and "/tmp" not in mounts and int(meta["tmp_mb"]) != tmp_mb:
                jail.resize_tmp(int(meta["tmp_mb"]))
        finally:
            for fd in fds:
                os.close(fd)
        return meta

    def _runtime(self, spec: Dict[str, Any], go_fd: int, log_fd: int, control_fd: int = -1,
                 runtime_fd: int = -1) -> None:
        """The runtime process: the function's code runs here, once PID 1 says what it is."""
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        ids = spec.get("ids") or {}
        if control_fd >= 0:
            go_fd, control_fd = jail.keep_only_fds([go_fd, control_fd])
        else:
            if runtime_fd >= 0:
                go_fd, runtime_fd = jail.keep_only_fds([go_fd, runtime_fd])
                os.set_inheritable(runtime_fd, False)  # the function's own children never get it
            else:
                [go_fd] = jail.keep_only_fds([go_fd])
            # Not a SnapStart template: drop everything now, while (in a pre-built
            # environment) no invocation is waiting for it.
            jail.become_function(ids.get("uid"), ids.get("gid"), self.seccomp_bpf)
            if spec.get("prebuilt") and self.rehearse is not None:
                self.rehearse()  # while nothing waits for this environment
                os.environ.clear()  # the zygote's: the function's own replace them
        assignment = json.loads(_read_all(go_fd))
        os.close(go_fd)
        env = assignment["env"]
        os.chdir(assignment.get("cwd") or env.get("LAMBDA_TASK_ROOT") or "/")
        jail.set_limits(assignment.get("rlimits") or {})  # only lowers limits: allowed unprivileged
        runtime = assignment["runtime"]
        if runtime_fd >= 0 and not runtime.get("channel"):
            os.close(runtime_fd)  # the worker sees it closed: events go through the init
            runtime_fd = -1
        snapshot = None
        if control_fd >= 0:
            if runtime.get("template") and self.mode != "process":
                jail.become_template(ids.get("uid"), ids.get("gid"), self.template_bpf)
                snapshot = self._snapshot_callback(control_fd)
            else:
                jail.become_function(ids.get("uid"), ids.get("gid"), self.seccomp_bpf)
        os.environ.clear()
        os.environ.update(env)
        if runtime["kind"] == "python":
            from lambdastack.runtime.python import bootstrap

            bootstrap.main(runtime.get("handler"), snapshot=snapshot, channel_fd=runtime_fd)
        else:
            argv = runtime["argv"]
            os.execve(argv[0], argv, env)

    def _snapshot_callback(self, control_fd: int) -> Callable[[Dict[str, Any]], int]:
        """What the runtime calls once its init is done: serve copies (see sandbox/snapshot.py).

        Returns in each copy, with the copy's own socket to the worker (-1 if it has none).
        (The module is imported with the zygote: inside the environment, lambdastack's own
        files are out of reach.)
        """
        seccomp_bpf, rehearse = self.seccomp_bpf, self.rehearse

        def snapshot(ready: Dict[str, Any]) -> int:
            return copies.serve_copies(control_fd, seccomp_bpf, ready, rehearse).runtime_fd

        return snapshot


def _extensions(folder: str = "/opt/extensions") -> List[str]:
    """The external extensions of this environment: executables in /opt/extensions, by name."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    paths = [os.path.join(folder, name) for name in names]
    return [p for p in paths if os.path.isfile(p) and os.access(p, os.X_OK)]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_all(fd: int) -> bytes:
    chunks: List[bytes] = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def python_layout() -> "tuple[List[tuple[str, str]], List[str]]":
    """Binds that make this interpreter usable inside the root, and site-packages to hide.

    The interpreter's prefix is mounted at its own path, so the zygote's already-imported
    modules and the standard library resolve the same inside as outside; the site-packages
    of the host are hidden, as a function sees only its code, its layers and /var/runtime.
    """
    import site
    import sysconfig

    binds: List[tuple[str, str]] = []
    for prefix in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}:
        if not prefix.startswith("/usr"):
            binds.append((prefix, prefix))
    version = "%d.%d" % sys.version_info[:2]
    hidden = set(site.getsitepackages([sys.base_prefix, sys.base_exec_prefix]))
    hidden.update(p for p in (sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")) if p)
    hidden.update(("/usr/lib/python3/dist-packages", "/usr/local/lib/python%s/dist-packages" % version,
                   "/usr/local/lib/python%s/site-packages" % version, "/usr/lib/python%s/site-packages" % version))
    return binds, sorted(os.path.realpath(p) for p in hidden)


def main(config: Dict[str, Any]) -> None:
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)  # the configuration pipe is read; environments inherit nothing from it
    os.close(null)
    Zygote(config).serve()

