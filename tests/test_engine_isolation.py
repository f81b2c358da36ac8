"""An environment is isolated from the host, from the platform and from other environments.

Each test runs hostile-looking code inside a function and checks what it could reach.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import Server, create_function, invoke_ok


@pytest.fixture(scope="module")
def lam(plain_lam: Any) -> Any:
    """Invoke payloads are streamed: use the client without body-reading hooks."""
    return plain_lam


PROBE = r'''
import ctypes, ctypes.util, errno, json, os, socket, subprocess, sys, time

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def try_open(path, mode="r"):
    try:
        with open(path, mode) as f:
            if "r" in mode:
                f.read(1)
            else:
                f.write("x")
        return "ok"
    except OSError as e:
        return err(e)


def try_listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError as e:
        return err(e)


def try_connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        return "connected"
    except OSError as e:
        return err(e) if e.errno else type(e).__name__
    finally:
        s.close()


def syscall_result(result):
    return "ok" if result == 0 else errno.errorcode.get(ctypes.get_errno(), "?")


def processes():
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[pid] = open("/proc/%s/cmdline" % pid, "rb").read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                out[pid] = None
    return out


def handler(event, context):
    action = event["action"]
    if action == "files":
        return {
            "write_task": try_open("/var/task/new.txt", "w"),
            "append_code": try_open("/var/task/app.py", "a"),
            "write_opt": try_open("/opt/new.txt", "w"),
            "write_tmp": try_open("/tmp/new.txt", "w"),
            "write_root": try_open("/new.txt", "w"),
            "write_usr": try_open("/usr/new.txt", "w"),
            "read": {p: try_open(p) for p in event["paths"]},
            "root": try_listdir("/"),
            "etc": try_listdir("/etc"),
            "proc1": open("/proc/1/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace"),
            "mounts": open("/proc/self/mounts").read(),
        }
    if action == "network":
        return {
            "interfaces": [name for _, name in socket.if_nameindex()],
            "connect": {"%s:%d" % (h, p): try_connect(h, p) for h, p in event["targets"]},
        }
    if action == "identity":
        status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
        return {
            "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "status": {k: status.get(k, "").strip() for k in
                       ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")},
            "hostname": socket.gethostname(),
        }
    if action == "privileged":
        libc.syscall.restype = ctypes.c_long
        results = {
            "mount": syscall_result(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None)),
            "unshare_user": syscall_result(libc.unshare(0x10000000)),
            "unshare_net": syscall_result(libc.unshare(0x40000000)),
            "ptrace_traceme": syscall_result(libc.ptrace(0, 0, None, None)),
            "ptrace_attach_init": syscall_result(libc.ptrace(16, 1, None, None)),
            "setuid_root": syscall_result(libc.setuid(0)),
            "sethostname": syscall_result(libc.sethostname(b"pwned", 5)),
            "chroot": syscall_result(libc.chroot(b"/tmp")),
            "reboot": syscall_result(libc.reboot(0x4321FEDC)),
            "kill_init": None,
        }
        try:
            os.kill(1, 9)
            results["kill_init"] = "ok"
        except OSError as e:
            results["kill_init"] = err(e)
        return results
    if action == "processes":
        child, spawned = None, time.time()
        if event.get("marker"):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", event["marker"]])
        time.sleep(event.get("sleep", 0))
        seen, listed = processes(), time.time()
        time.sleep(event.get("sleep", 0))
        if child is not None:
            child.kill()
            child.wait()
        return {"seen": seen, "pid": os.getpid(), "pidns": os.readlink("/proc/self/ns/pid"),
                "spawned": spawned, "listed": listed, "killed": time.time()}
    raise ValueError(action)
'''


@pytest.fixture(scope="module")
def probe(lam: Any) -> str:
    return create_function(lam, PROBE, MemorySize=256, Timeout=20)


# -- the file system -------------------------------------------------------------------------------


@pytest.fixture
def host_secret(tmp_path: Path) -> Iterator[Path]:
    """A world-readable file on the host, in a world-readable directory under /tmp."""
    folder = tmp_path / "shared"
    folder.mkdir()
    secret = folder / "secret.txt"
    secret.write_text("host secret " + uuid.uuid4().hex)
    for path in (tmp_path, folder):
        path.chmod(0o755)
    secret.chmod(0o644)
    yield secret


def test_code_is_read_only_and_tmp_is_writable(lam: Any, probe: str) -> None:
    r = invoke_ok(lam, probe, {"action": "files", "paths": []})
    assert r["write_task"] in ("EROFS", "EACCES")
    assert r["append_code"] in ("EROFS", "EACCES")
    assert r["write_opt"] in ("EROFS", "EACCES")
    assert r["write_root"] in ("EROFS", "EACCES")
    assert r["write_usr"] in ("EROFS", "EACCES")
    assert r["write_tmp"] == "ok"


def test_host_files_cannot_be_read(server: Server, lam: Any, probe: str, host_secret: Path) -> None:
    paths = [str(host_secret), str(server.data_dir), str(server.data_dir / "lambdastack.db"), "/etc/shadow",
             "/root/.bashrc", "/work/main/pyproject.toml", "/home", "/etc/hostname.host"]
    assert host_secret.read_text().startswith("host secret")  # readable from the host
    r = invoke_ok(lam, probe, {"action": "files", "paths": paths})
    for path, outcome in r["read"].items():
        assert outcome in ("ENOENT", "EACCES", "EISDIR"), f"{path} is visible inside: {outcome}"
        if path != "/home":
            assert outcome != "EISDIR", path
    # (/mnt is the environment's own empty mount point for file systems: tests/test_file_systems.py)
    assert not {"work", "home", "srv", "media", "boot"} & set(r["root"]), r["root"]
    assert "shadow" not in r["etc"]
    assert str(server.data_dir) not in r["mounts"]


def test_proc_shows_the_environment_not_the_host(lam: Any, probe: str) -> None:
    host_init = Path("/proc/1/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    r = invoke_ok(lam, probe, {"action": "files", "paths": []})
    assert r["proc1"] != host_init
    assert "lambdastack" in r["proc1"]  # PID 1 inside is lambdastack's own init


# -- the network -----------------------------------------------------------------------------------


def host_addresses() -> set[str]:
    """The host's own non-loopback IPv4 addresses (from its routing table)."""
    addresses = set()
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # picks the outgoing address; sends nothing
        addresses.add(s.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addresses.add(str(info[4][0]))
    return {a for a in addresses if not a.startswith("127.")}


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A TCP port listening on every address of the host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 0))
        s.listen(16)
        stop = threading.Event()

        def accept() -> None:
            s.settimeout(0.2)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    s.accept()[0].close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield s.getsockname()[1]
        stop.set()
        thread.join()


def test_platform_and_host_ports_are_unreachable(server: Server, lam: Any, probe: str, host_listener: int) -> None:
    targets = [("127.0.0.1", server.port), ("127.0.0.1", host_listener)]
    targets += [(address, port) for address in sorted(host_addresses()) for port in (server.port, host_listener)]
    targets += [("169.254.169.254", 80)]  # refused by the server's rules: nothing leaves the machine
    # From the host, the listener answers on each of those addresses.
    for address in ["127.0.0.1", *sorted(host_addresses())]:
        socket.create_connection((address, host_listener), timeout=2).close()
    r = invoke_ok(lam, probe, {"action": "network", "targets": targets})
    network = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["network"]
    # Loopback, and eth0 where functions have a network (see test_network.py for what it reaches).
    assert r["interfaces"] == (["lo"] if network["egress"] == "none" else ["lo", "eth0"])
    for target, outcome in r["connect"].items():
        assert outcome != "connected", f"{target} is reachable from inside"
        assert outcome in ("ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH", "TimeoutError", "EACCES", "EPERM"), (
            target, outcome)


# -- identity and privileges -----------------------------------------------------------------------


def test_unprivileged_user_without_capabilities(lam: Any, probe: str) -> None:
    r = invoke_ok(lam, probe, {"action": "identity"})
    assert (r["uid"], r["euid"]) == (993, 993)
    assert r["groups"] == [] or r["groups"] == [r["gid"]]
    status = r["status"]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[cap], 16) == 0, (cap, status[cap])
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert r["hostname"] != socket.gethostname()


def test_capability_bounding_set_is_empty(lam: Any, probe: str) -> None:
    """The jailer promises no capabilities at all: none effective, and none that could ever be gained."""
    status = invoke_ok(lam, probe, {"action": "identity"})["status"]
    assert int(status["CapBnd"], 16) == 0, status["CapBnd"]


def test_privileged_operations_are_refused(lam: Any, probe: str) -> None:
    r = invoke_ok(lam, probe, {"action": "privileged"})
    for operation, outcome in r.items():
        assert outcome in ("EPERM", "EACCES", "ENOSYS"), f"{operation}: {outcome}"
    # The environment is still healthy afterwards.
    assert invoke_ok(lam, probe, {"action": "identity"})["uid"] == 993


# -- processes -------------------------------------------------------------------------------------


def visible_pids(result: dict[str, Any]) -> set[int]:
    return {int(pid) for pid in result["seen"]}


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def test_only_the_environments_own_processes_are_visible(server: Server, lam: Any, probe: str) -> None:
    r = invoke_ok(lam, probe, {"action": "processes"})
    pids = visible_pids(r)
    assert 1 in pids and r["pid"] in pids
    assert len(pids) <= 3, r["seen"]  # init and the runtime
    seen = list(r["seen"].values())
    for host_process in (server.pid, os.getpid(), os.getppid()):
        assert cmdline(host_process) not in seen


def test_host_layout_is_not_revealed(server: Server, lam: Any, probe: str) -> None:
    r = invoke_ok(lam, probe, {"action": "processes"})
    for pid, line in r["seen"].items():
        assert str(server.data_dir) not in (line or ""), (pid, line)


def test_concurrent_environments_cannot_see_each_other(lam: Any) -> None:
    name = create_function(lam, PROBE, Timeout=20)
    markers = [f"marker-{uuid.uuid4().hex}" for _ in range(2)]
    results: dict[str, Any] = {}

    def run(marker: str) -> None:
        results[marker] = invoke_ok(lam, name, {"action": "processes", "marker": marker, "sleep": 1.0})

    threads = [threading.Thread(target=run, args=(m,)) for m in markers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = (results[m] for m in markers)
    assert a["pidns"] != b["pidns"]
    # Each looked while the other's child was alive.
    assert a["spawned"] < b["listed"] < a["killed"] and b["spawned"] < a["listed"] < b["killed"], (a, b)
    for mine, theirs in ((markers[0], markers[1]), (markers[1], markers[0])):
        cmdlines = " ".join(c or "" for c in results[mine]["seen"].values())
        assert mine in cmdlines  # its own child is visible ...
        assert theirs not in cmdlines  # ... the other environment's is not
