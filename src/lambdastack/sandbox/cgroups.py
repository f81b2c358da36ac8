"""Per-environment cgroups: memory limit, CPU share, pids limit, freezer, and kill.

Both cgroup v2 (the unified hierarchy most current distributions mount) and v1 (separate
hierarchies per controller) are supported behind one interface. Each lambdastack server
gets its own subtree, `lambdastack/<server-pid>/`, so that a server that died without
cleaning up can be swept by the next one.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

# One full vCPU at 1,769 MB, as on Lambda.
MB_PER_VCPU = 1769
# The CFS bandwidth period environments are given where their quota allows it, and the kernel's
# smallest quota (it refuses less than 1 ms a period).
CPU_PERIOD_US = 10_000
MIN_QUOTA_US = 1000
ROOT_NAME = "lambdastack"


def cpu_period_us(memory_mb: int) -> int:
    """The CFS period: 10 ms, or longer where 1 ms (the kernel's least quota) is more than the share.

    A throttled environment waits for the end of the period, so the period bounds the stall a
    function meets when it has used up its share: with the kernel's 100 ms default, a 128 MB
    function whose invocations were quick waited up to 93 ms every 100 ms. A shorter period keeps
    the same share in smaller slices. 128 MB's 7.2% of a core is 1 ms every 13.8 ms: the
    shortest period that keeps that share exactly.
    """
    return max(CPU_PERIOD_US, -(-MIN_QUOTA_US * MB_PER_VCPU // max(1, memory_mb)))


def cpu_quota_us(memory_mb: int) -> int:
    """CPU time per period: memory_mb / 1,769 of a core, as Lambda gives."""
    return max(MIN_QUOTA_US, cpu_period_us(memory_mb) * memory_mb // MB_PER_VCPU)


def cpu_burst_us(memory_mb: int) -> int:
    """Quota an idle environment may save for later: one period's worth (the kernel allows no more).

    Quick invocations come unevenly; an environment that used less than its quota in the last
    periods may run on that much longer before it waits. Over any span the share grows by at
    most one quota (1 ms at 128 MB), so a CPU-bound function still gets its share.
    """
    return cpu_quota_us(memory_mb)


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (a server whose leftovers must not be swept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EnvCgroup:
    """The cgroup(s) of one execution environment."""

    def __init__(self) -> None:
        self.removed = False
        self._removal_lock = threading.Lock()

    def procs_files(self) -> list[str]:
        """cgroup.procs files a process writes "0" into to join this cgroup."""
        raise NotImplementedError

    def clone_into(self) -> str | None:
        """The directory a child can be cloned into (cgroup v2's CLONE_INTO_CGROUP), if any."""
        return None

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def peak_memory_bytes(self) -> int:
        raise NotImplementedError

    def oom_kills(self) -> int:
        raise NotImplementedError

    def set_cpu(self, memory_mb: int | None) -> None:
        """Apply the CPU share for `memory_mb`, or lift the limit (None), e.g. while initializing."""
        raise NotImplementedError

    def set_memory(self, memory_mb: int) -> None:
        """Change the memory limit (a pre-built environment learns its function's MemorySize)."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def remove(self) -> bool:
        raise NotImplementedError

    def kill_and_remove(self, timeout: float = 5.0) -> bool:
        """Kill every process in the cgroup and remove it; True when it is gone.

        Safe to call from several threads and more than once.
        """
        with self._removal_lock:
            deadline = time.monotonic() + timeout
            while not self.removed:
                self.kill()
                self.removed = self.remove()
                if self.removed or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            return self.removed


class Driver:
    """Creates environment cgroups under this server's subtree."""

    version = 0

    def create(self, name: str, memory_mb: int, pids_max: int) -> EnvCgroup:
        raise NotImplementedError

    def sweep(self) -> int:
        """Kill and remove the subtrees of lambdastack servers that are gone; return how many."""
        raise NotImplementedError

    def close(self) -> None:
        """Remove this server's (empty) subtree."""
        raise NotImplementedError

    def subtree_memory_files(self) -> tuple[Path, Path, str] | None:
        """This server's subtree memory use: its usage file, its memory.stat, and the stat key of
        reclaimable file cache (what the kernel drops before it would OOM)."""
        return None


# ---------------------------------------------------------------------------------------- v1

V1_CONTROLLERS = ("memory", "cpu", "pids", "freezer")


class V1Cgroup(EnvCgroup):
    def __init__(self, dirs: dict[str, Path]) -> None:
        super().__init__()
        self.dirs = dirs
        self._fds: dict[str, int] = {}

    def _fd(self, controller: str, name: str, flags: int) -> int:
        """Files read or written on every invocation stay open (one system call each, not three)."""
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(self.dirs[controller] / name, flags)
        return fd

    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def freeze(self) -> None:
        os.pwrite(self._fd("freezer", "freezer.state", os.O_WRONLY), b"FROZEN", 0)

    def thaw(self) -> None:
        os.pwrite(self._fd("freezer", "freezer.state", os.O_WRONLY), b"THAWED", 0)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in _read(self.dirs["pids"] / "cgroup.procs").split()]
        except OSError:  # gone, or going (ENODEV)
            return []

    def peak_memory_bytes(self) -> int:
        return int(os.pread(self._fd("memory", "memory.max_usage_in_bytes", os.O_RDONLY), 32, 0))

    def _close_files(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def oom_kills(self) -> int:
        for line in _read(self.dirs["memory"] / "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def set_cpu(self, memory_mb: int | None) -> None:
        if memory_mb is None:
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", "-1")
            return
        cpu = self.dirs["cpu"]
        burst = cpu / "cpu.cfs_burst_us"
        has_burst = burst.exists()  # Linux 5.14 on
        if has_burst:
            _write(burst, "0")  # the kernel refuses a quota below the burst: lower it first
        _write(cpu / "cpu.cfs_period_us", str(cpu_period_us(memory_mb)))
        _write(cpu / "cpu.cfs_quota_us", str(cpu_quota_us(memory_mb)))
        if has_burst:
            _write(burst, str(cpu_burst_us(memory_mb)))

    def set_memory(self, memory_mb: int) -> None:
        limit = str(memory_mb * 1024 * 1024)
        # memsw must never be below the memory limit: lower memory first, then memsw.
        _write(self.dirs["memory"] / "memory.limit_in_bytes", limit)
        try:
            _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", limit)
        except OSError:
            pass
        _write(self.dirs["cpu"] / "cpu.shares", str(max(2, memory_mb)))

    def kill(self) -> None:
        # Freeze first so nothing forks while we kill, then kill, then thaw so the kills land.
        try:
            self.freeze()
        except OSError:
            pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.thaw()
        except OSError:
            pass

    def remove(self) -> bool:
        self._close_files()
        ok = True
        for d in self.dirs.values():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                ok = False
        return ok


class V1Driver(Driver):
    version = 1

    def __init__(self, mount: Path = Path("/sys/fs/cgroup"), server_id: str | None = None) -> None:
        self.mount = mount
        self.server_id = server_id or str(os.getpid())
        self.bases: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            base = mount / controller / ROOT_NAME / self.server_id
            base.mkdir(parents=True, exist_ok=True)
            self.bases[controller] = base

    @staticmethod
    def available(mount: Path = Path("/sys/fs/cgroup")) -> bool:
        return all((mount / c / "cgroup.procs").exists() for c in V1_CONTROLLERS) and os.access(
            mount / "memory", os.W_OK
        )

    def create(self, name: str, memory_mb: int, pids_max: int) -> V1Cgroup:
        dirs = {c: self.bases[c] / name for c in V1_CONTROLLERS}
        for d in dirs.values():
            d.mkdir(exist_ok=True)
        limit = str(memory_mb * 1024 * 1024)
        _write(dirs["memory"] / "memory.limit_in_bytes", limit)
        try:
            _write(dirs["memory"] / "memory.memsw.limit_in_bytes", limit)
        except OSError:
            pass  # no swap accounting on this host
        _write(dirs["pids"] / "pids.max", str(pids_max))
        _write(dirs["cpu"] / "cpu.shares", str(max(2, memory_mb)))
        _write(dirs["cpu"] / "cpu.cfs_period_us", str(cpu_period_us(memory_mb)))
        return V1Cgroup(dirs)

    def subtree_memory_files(self) -> tuple[Path, Path, str] | None:
        base = self.bases["memory"]
        return base / "memory.usage_in_bytes", base / "memory.stat", "total_inactive_file"

    def sweep(self) -> int:
        swept = 0
        root = self.mount / "memory" / ROOT_NAME
        for server_dir in root.iterdir() if root.exists() else ():
            if not server_dir.is_dir() or server_dir.name == self.server_id:
                continue
            if server_dir.name.isdigit() and pid_alive(int(server_dir.name)):
                continue
            for env_dir in [p for p in server_dir.iterdir() if p.is_dir()]:
                dirs = {c: self.mount / c / ROOT_NAME / server_dir.name / env_dir.name for c in V1_CONTROLLERS}
                V1Cgroup(dirs).kill_and_remove()
                swept += 1
            for c in V1_CONTROLLERS:
                try:
                    os.rmdir(self.mount / c / ROOT_NAME / server_dir.name)
                except OSError:
                    pass
        return swept

    def close(self) -> None:
        for base in self.bases.values():
            try:
                os.rmdir(base)
            except OSError:
                pass


# ---------------------------------------------------------------------------------------- v2


class V2Cgroup(EnvCgroup):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def procs_files(self) -> list[str]:
        return [str(self.path / "cgroup.procs")]

    def clone_into(self) -> str | None:
        return str(self.path)

    def freeze(self) -> None:
        _write(self.path / "cgroup.freeze", "1")

    def thaw(self) -> None:
        _write(self.path / "cgroup.freeze", "0")

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in _read(self.path / "cgroup.procs").split()]
        except OSError:  # gone, or going (ENODEV)
            return []

    def peak_memory_bytes(self) -> int:
        peak = self.path / "memory.peak"
        if peak.exists():
            return int(_read(peak))
        return int(_read(self.path / "memory.current"))

    def oom_kills(self) -> int:
        for line in _read(self.path / "memory.events").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def set_cpu(self, memory_mb: int | None) -> None:
        if memory_mb is None:
            _write(self.path / "cpu.max", "max")
            return
        burst = self.path / "cpu.max.burst"
        has_burst = burst.exists()  # Linux 5.14 on
        if has_burst:
            _write(burst, "0")  # the kernel refuses a quota below the burst: lower it first
        _write(self.path / "cpu.max", f"{cpu_quota_us(memory_mb)} {cpu_period_us(memory_mb)}")
        if has_burst:
            _write(burst, str(cpu_burst_us(memory_mb)))

    def set_memory(self, memory_mb: int) -> None:
        _write(self.path / "memory.max", str(memory_mb * 1024 * 1024))
        _write(self.path / "cpu.weight", str(max(1, min(10000, memory_mb * 100 // 1024))))

    def kill(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            try:
                _write(kill_file, "1")
                return
            except FileNotFoundError:
                return
        try:
            self.freeze()
        except OSError:
            pass
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.thaw()
        except OSError:
            pass

    def remove(self) -> bool:
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno == errno.EBUSY:
                return False
            raise
        return True


class V2Driver(Driver):
    version = 2
    CONTROLLERS = ("memory", "cpu", "pids")

    def __init__(self, mount: Path, server_id: str | None = None) -> None:
        self.mount = mount
        self.server_id = server_id or str(os.getpid())
        root = mount / ROOT_NAME
        root.mkdir(exist_ok=True)
        self._enable(mount)
        self._enable(root)
        self.base = root / self.server_id
        self.base.mkdir(exist_ok=True)
        self._enable(self.base)

    def _enable(self, path: Path) -> None:
        wanted = " ".join("+" + c for c in self.CONTROLLERS)
        try:
            _write(path / "cgroup.subtree_control", wanted)
        except OSError:
            pass

    @staticmethod
    def find_mount() -> Path | None:
        for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
            controllers = candidate / "cgroup.controllers"
            if controllers.exists():
                available = set(_read(controllers).split())
                if {"memory", "cpu", "pids"} <= available and os.access(candidate, os.W_OK):
                    return candidate
        return None

    def create(self, name: str, memory_mb: int, pids_max: int) -> V2Cgroup:
        path = self.base / name
        path.mkdir(exist_ok=True)
        _write(path / "memory.max", str(memory_mb * 1024 * 1024))
        try:
            _write(path / "memory.swap.max", "0")
        except OSError:
            pass
        _write(path / "pids.max", str(pids_max))
        _write(path / "cpu.weight", str(max(1, min(10000, memory_mb * 100 // 1024))))
        return V2Cgroup(path)

    def subtree_memory_files(self) -> tuple[Path, Path, str] | None:
        return self.base / "memory.current", self.base / "memory.stat", "inactive_file"

    def sweep(self) -> int:
        swept = 0
        root = self.mount / ROOT_NAME
        for server_dir in root.iterdir():
            if not server_dir.is_dir() or server_dir.name == self.server_id:
                continue
            if server_dir.name.isdigit() and pid_alive(int(server_dir.name)):
                continue
            for env_dir in [p for p in server_dir.iterdir() if p.is_dir()]:
                V2Cgroup(env_dir).kill_and_remove()
                swept += 1
            try:
                os.rmdir(server_dir)
            except OSError:
                pass
        return swept

    def close(self) -> None:
        try:
            os.rmdir(self.base)
        except OSError:
            pass


def detect(server_id: str | None = None) -> Driver | None:
    """The cgroup driver this host offers to us, or None (not root, or no controllers)."""
    if V1Driver.available():
        try:
            return V1Driver(server_id=server_id)
        except OSError:
            return None
    mount = V2Driver.find_mount()
    if mount is not None:
        try:
            return V2Driver(mount, server_id=server_id)
        except OSError:
            return None
    return None
