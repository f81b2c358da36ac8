"""The jailer: every privileged step that builds and enters an execution environment.

Read this module to know what an environment can and cannot do. Nothing else in
lambdastack mounts, unshares, changes uids or installs seccomp filters.

Two stages, both run in processes forked from a runtime's zygote:

1. Once per zygote (`prepare_zygote`): the zygote moves into a private mount namespace
   (and, without root, a user namespace of its own) and builds the **base root** there: a
   read-only tmpfs holding only what a Lambda environment holds — /usr and the library
   directories, the runtime's interpreter, a minimal /etc, a few device nodes, and empty
   mount points for /proc, /tmp, /var/task and /opt. The host's site-packages are hidden.
2. Once per environment (`enter_environment`), in the environment's first process (PID 1 of
   a new PID namespace): join the cgroups, unshare mount, network, IPC, UTS and cgroup
   namespaces, mount /tmp (a tmpfs of EphemeralStorage MB), /var/task and /opt (read-only),
   /proc, pivot into the base root and detach the host's tree; bring up loopback and, where
   the server gives environments a network, `eth0`: one end of a veth pair whose other end
   is a port of the server's bridge (`connect_network`; the rules are in network/rules.py).
   Then `become_function` (the runtime) and `become_init` (PID 1 itself) drop to
   unprivileged uids with no capabilities, `no_new_privs`, and the seccomp filter.
"""

from __future__ import annotations

import fcntl
import os
import resource
import socket
import struct
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from lambdastack.sandbox import libc, netlink

# The function's user, as on Lambda (sbx_user1051), and the init's own user.
FUNCTION_UID = 993
FUNCTION_GID = 990
INIT_UID = 992
INIT_GID = 992

HOSTNAME = "lambdastack"
BASE_SIZE = "16m"

ETC_FILES = {
    "passwd": "root:x:0:0:root:/root:/sbin/nologin\n"
              "sbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n"
              "lambdastack-init:x:992:992::/:/sbin/nologin\n",
    "group": "root:x:0:\nsbx_user1051:x:990:\nlambdastack-init:x:992:\n",
    "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    "resolv.conf": "",
    "hostname": HOSTNAME + "\n",
}
ETC_DIRS = ("ssl", "ca-certificates", "alternatives", "pki", "crypto-policies")
ETC_COPIED = ("ld.so.cache", "ld.so.conf", "mime.types", "localtime")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")

_STATVFS_TO_MS = (
    (os.ST_RDONLY, libc.MS_RDONLY), (os.ST_NOSUID, libc.MS_NOSUID),
    (os.ST_NODEV, libc.MS_NODEV), (os.ST_NOEXEC, libc.MS_NOEXEC),
)


# ------------------------------------------------------------------------ stage 1: the zygote


def prepare_zygote(userns: bool) -> None:
    """Give the zygote a private mount namespace (and its own user namespace without root)."""
    if userns:
        uid, gid = os.getuid(), os.getgid()
        libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS)
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", "0 %d 1" % uid)
        _write("/proc/self/gid_map", "0 %d 1" % gid)
    else:
        libc.unshare(libc.CLONE_NEWNS)
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)


def build_base_root(base: str, binds: Sequence[Tuple[str, str]], hidden: Iterable[str],
                    etc: Optional[Dict[str, str]] = None) -> None:
    """Build the read-only base root at `base` (an empty directory) in the zygote's namespace.

    `binds` are (host path, path inside the root) pairs mounted read-only, e.g. the
    interpreter's prefix and /var/runtime; `hidden` are paths inside the root covered by an
    empty read-only tmpfs (the host's site-packages); `etc` replaces files of the minimal /etc
    (the network's `hosts` and `resolv.conf`).
    """
    libc.mount("tmpfs", base, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=0755,size=" + BASE_SIZE)
    _bind_ro("/usr", base + "/usr")
    for name in TOP_DIRS:
        host = "/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), base + host)
        elif os.path.isdir(host):
            _bind_ro(host, base + host)
    _build_etc(base, etc or {})
    _build_dev(base)
    for mountpoint in ("proc", "tmp", "var/task", "opt", "var/runtime", "mnt"):
        os.makedirs(base + "/" + mountpoint, exist_ok=True)
    for host, inside in binds:
        if os.path.exists(host):
            _bind_ro(host, base + inside)
    for inside in hidden:
        target = base + inside
        if os.path.isdir(target):
            libc.mount("tmpfs", target, "tmpfs", libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV, "size=4k,mode=0755")
    # Read-only for every environment: remount the tmpfs superblock itself.
    libc.mount("tmpfs", base, "tmpfs", libc.MS_REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV,
               "mode=0755,size=" + BASE_SIZE)


def _build_etc(base: str, replaced: Dict[str, str]) -> None:
    etc = base + "/etc"
    os.makedirs(etc)
    for name, text in dict(ETC_FILES, **replaced).items():
        with open(etc + "/" + name, "w") as f:
            f.write(text)
    for name in ETC_COPIED:
        host = "/etc/" + name
        if os.path.islink(host):
            os.symlink(os.readlink(host), etc + "/" + name)
        elif os.path.isfile(host):
            with open(host, "rb") as src, open(etc + "/" + name, "wb") as dst:
                dst.write(src.read())
    for name in ETC_DIRS:
        host = "/etc/" + name
        if os.path.isdir(host) and not os.path.islink(host):
            _bind_ro(host, etc + "/" + name)


def _build_dev(base: str) -> None:
    dev = base + "/dev"
    os.makedirs(dev)
    _populate_dev(dev)


def _populate_dev(dev: str) -> None:
    for name in DEVICES:
        host = "/dev/" + name
        if os.path.exists(host):
            open(dev + "/" + name, "w").close()
            libc.mount(host, dev + "/" + name, None, libc.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, dev + "/" + name)


def _bind_ro(host: str, target: str) -> None:
    if os.path.isdir(host):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):  # (a read-only root has its mount points already)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    libc.mount(host, target, None, libc.MS_BIND | libc.MS_REC)
    # A remount must keep the flags the original mount has locked (in a user namespace).
    flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_RDONLY | libc.MS_NOSUID
    locked = os.statvfs(host).f_flag
    for st_flag, ms_flag in _STATVFS_TO_MS:
        if locked & st_flag:
            flags |= ms_flag
    libc.mount(None, target, None, flags)


# ------------------------------------------------------------------ stage 2: one environment


def join_cgroups(procs_files: Sequence[str]) -> None:
    for path in procs_files:
        _write(path, "0")


def unshare_environment() -> None:
    """New mount, network, IPC, UTS and cgroup namespaces for this environment."""
    libc.unshare(libc.CLONE_NEWNS | libc.CLONE_NEWNET | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS
                 | libc.CLONE_NEWCGROUP)
    socket.sethostname(HOSTNAME)


def enter_root(root: str, tmp_mb: int, task_dir: Optional[str], opt_dirs: Sequence[str] = (),
               own_root: bool = False, etc_from: str = "") -> None:
    """Mount this environment's /tmp, /var/task, /opt (its layers) and /proc on `root`; pivot into it.

    `own_root` is for roots that are not a mount of their own yet (a container image's
    unpacked root filesystem); the base root prepared by the zygote already is one. An
    image's own /etc/hosts and /etc/resolv.conf give way to the base root's (in `etc_from`),
    which know the environment's network.
    """
    if own_root:
        _bind_ro(root, root)
        for name in ("hosts", "resolv.conf"):
            ours, theirs = etc_from + "/" + name, root + "/etc/" + name
            if etc_from and os.path.isfile(ours) and os.path.isfile(theirs) and not os.path.islink(theirs):
                _bind_ro(ours, theirs)
        # The image's own /dev is not used: the same few device nodes as the base root's.
        libc.mount("tmpfs", root + "/dev", "tmpfs", libc.MS_NOSUID | libc.MS_NOEXEC, "size=64k,mode=0755")
        _populate_dev(root + "/dev")
        libc.mount("tmpfs", root + "/dev", "tmpfs",
                   libc.MS_REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NOEXEC, "size=64k,mode=0755")
    libc.mount("tmpfs", root + "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV,
               "size=%dm,mode=1777" % tmp_mb)
    if task_dir:
        _bind_ro(task_dir, root + "/var/task")
    if opt_dirs:
        mount_layers(opt_dirs, root + "/opt")
    libc.mount("proc", root + "/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    os.chdir(root)
    libc.pivot_root(".", ".")
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")


def readonly_tree(host_path: str) -> int:
    """A detached, read-only copy of `host_path`'s mount tree, to be attached in an environment.

    This is how code reaches an environment that was built before its function was known:
    the descriptor crosses into it over its channel, and `attach_tree` mounts it.
    """
    fd = libc.open_tree_clone(host_path)
    try:
        libc.mount_setattr(fd, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV)
    except OSError:
        os.close(fd)
        raise
    return fd


def attach_tree(fd: int, target: str) -> None:
    libc.move_mount(fd, target)


def shared_tree(host_path: str, userns_fd: int) -> int:
    """A detached, read-write copy of `host_path`'s mount tree whose owners are mapped by the
    user namespace `userns_fd` (an idmapped mount): a shared file system for an environment,
    where the function's user reads and writes as the access point's POSIX user."""
    fd = libc.open_tree_clone(host_path)
    try:
        libc.mount_setattr(fd, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_IDMAP, userns_fd)
    except OSError:
        os.close(fd)
        raise
    return fd


def idmapping(uid_pair: Tuple[int, int], gid_pair: Tuple[int, int]) -> int:
    """A user namespace that maps one owner on disk to one user of the environments, as a
    descriptor for `shared_tree`: (id on disk, id of the function's user), for uid and gid.

    Its only process (a child made for the purpose) exits once the descriptor is open."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            libc.unshare(libc.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise OSError("could not make a user namespace for an idmapped mount")
        _write("/proc/%d/uid_map" % pid, "%d %d 1" % uid_pair)
        _write("/proc/%d/gid_map" % pid, "%d %d 1" % gid_pair)
        return os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # reaped by the server's own child watcher


def attach_under_mnt(mounts: Dict[str, int]) -> None:
    """Attach shared file systems (`LocalMountPath` -> detached tree) under /mnt.

    The root is read-only, so /mnt becomes a small tmpfs holding the mount points, made
    read-only again once they are in place.
    """
    libc.mount("tmpfs", "/mnt", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "size=64k,mode=0755")
    for target, fd in mounts.items():
        os.makedirs(target, mode=0o755, exist_ok=True)
        libc.move_mount(fd, target)
    libc.mount("tmpfs", "/mnt", "tmpfs", libc.MS_REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV
               | libc.MS_NOEXEC, "size=64k,mode=0755")


def resize_tmp(tmp_mb: int) -> None:
    """Give /tmp its size (EphemeralStorage) once the environment's function is known."""
    libc.mount("tmpfs", "/tmp", "tmpfs", libc.MS_REMOUNT | libc.MS_NOSUID | libc.MS_NODEV,
               "size=%dm,mode=1777" % tmp_mb)


def mount_layers(layers: Sequence[str], target: str) -> None:
    """Mount layer directories at `target`, merged and read-only; a later layer's files win.

    Several layers make an overlayfs with only lower directories (hence read-only), the last
    layer on top; a single layer is a plain read-only bind.
    """
    if len(layers) == 1:
        _bind_ro(layers[0], target)
        return
    # overlayfs separates lower directories with ':' and options with ','; escape both.
    lower = ":".join(d.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,") for d in reversed(layers))
    libc.mount("overlay", target, "overlay", libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV, "lowerdir=" + lower)


def connect_network(net: Dict[str, object], host_netns_fd: int) -> None:
    """Plug this environment (already in its own network namespace) into the host's bridge.

    `net` (from network/host.py): the bridge's index, the host end's interface name, this
    environment's address and the gateway. The environment gets `eth0` with a /32 address and
    two routes: the gateway on the link, and everything else through it. So every packet it
    sends, to another environment too, crosses the host's rules (network/rules.py). IPv6 is
    off in the namespace: none of the rules would apply to it.
    """
    own_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for path in ("/proc/sys/net/ipv6/conf/default/disable_ipv6", "/proc/sys/net/ipv6/conf/all/disable_ipv6"):
            if os.path.exists(path):
                _write(path, "1")
        libc.setns(host_netns_fd, libc.CLONE_NEWNET)
        try:
            with netlink.Netlink() as nl:
                nl.add_veth(str(net["host_if"]), int(str(net["bridge_index"])), "eth0", own_fd)
        finally:
            libc.setns(own_fd, libc.CLONE_NEWNET)
    finally:
        os.close(own_fd)
    _address_eth0(net)


def plug_in(pids: Sequence[int], net: Dict[str, object]) -> None:
    """`connect_network` from the host's side, for a namespace the environment cannot leave:
    a SnapStart copy's (owned by its template's user namespace, where it holds no right over
    the host's), found through any live process of it (`pids`). Runs in a thread of the
    server, which enters the copy's network namespace for the address and routes, and comes
    back."""
    target = _open_netns(pids)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with netlink.Netlink() as nl:
            nl.add_veth(str(net["host_if"]), int(str(net["bridge_index"])), "eth0", target)
        libc.setns(target, libc.CLONE_NEWNET)
        try:
            _address_eth0(net)
        finally:
            libc.setns(home, libc.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


def _open_netns(pids: Sequence[int]) -> int:
    for pid in pids:
        try:
            return os.open("/proc/%d/ns/net" % pid, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # gone already (the helper that forked the copy's PID 1 exits at once)
    raise OSError("no live process in the namespace")


def _address_eth0(net: Dict[str, object]) -> None:
    gateway = str(net["gateway"])
    index = socket.if_nametoindex("eth0")
    with netlink.Netlink() as nl:
        nl.set_up(index)
        nl.add_address(index, str(net["address"]), 32)
        nl.add_route(index, (gateway, 32))
        nl.add_route(index, gateway=gateway)


def loopback_up() -> None:
    """Bring up `lo`, the environment's only network interface."""
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def set_limits(limits: Dict[str, int]) -> None:
    """Lower rlimits to e.g. {"NOFILE": 1024, "CORE": 0, "DATA": bytes}."""
    for name, value in limits.items():
        which = getattr(resource, "RLIMIT_" + name)
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # never raise a limit: the caller may be unprivileged
        resource.setrlimit(which, (value, value))


def become_function(uid: Optional[int], gid: Optional[int], seccomp_bpf: Optional[bytes]) -> None:
    """Drop to the function's user with no capabilities, no_new_privs and the seccomp filter."""
    _drop(uid, gid, seccomp_bpf)


def become_init(uid: Optional[int], gid: Optional[int], seccomp_bpf: Optional[bytes]) -> None:
    """Drop PID 1 to its own unprivileged user; it also stops being dumpable or traceable."""
    _drop(uid, gid, seccomp_bpf)
    libc.prctl(libc.PR_SET_DUMPABLE, 0)


def _drop(uid: Optional[int], gid: Optional[int], seccomp_bpf: Optional[bytes]) -> None:
    # The bounding set was emptied once in the zygote (`seal_zygote`) and is inherited.
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    libc.clear_capabilities()
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_bpf:
        libc.install_seccomp_filter(seccomp_bpf)


def seal_zygote() -> bool:
    """Empty the zygote's capability bounding set: every environment inherits an empty one.

    False where we may not (an unprivileged server without namespaces has no capabilities
    to bound anyway, and no_new_privs keeps it from gaining any).
    """
    try:
        libc.drop_bounding_set()
    except PermissionError:
        return False
    return True


# ------------------------------------------------------------ SnapStart templates and copies

# What a template keeps to make copies of itself, in its own user namespace only: new
# namespaces and mounts in them (SYS_ADMIN), `lo` up (NET_ADMIN), and giving all that up in
# each copy (SETPCAP, for the bounding set).
TEMPLATE_CAPABILITIES = (libc.CAP_SYS_ADMIN, libc.CAP_NET_ADMIN, libc.CAP_SETPCAP)


def become_template(uid: Optional[int], gid: Optional[int], template_bpf: Optional[bytes]) -> None:
    """A SnapStart template's runtime: the function's user, then a user namespace of its own.

    The user namespace maps the function's user to itself and nothing else. In it the
    template holds three capabilities over namespaces it creates itself, and none over
    anything that exists already (the environment's namespaces belong to the host). Its
    filter refuses everything an environment's does but `unshare` and `mount`; each copy
    gives up the capabilities and stacks the environment filter (`seal_copy`).
    Must run while the process has one thread (before any of the function's code).
    """
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    outer_uid, outer_gid = os.getuid(), os.getgid()
    libc.unshare(libc.CLONE_NEWUSER)
    # Changing user made the process undumpable, which keeps /proc/self/* out of its reach.
    libc.prctl(libc.PR_SET_DUMPABLE, 1)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", "%d %d 1" % (outer_uid, outer_uid))
    _write("/proc/self/gid_map", "%d %d 1" % (outer_gid, outer_gid))
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    libc.drop_bounding_set(keep=TEMPLATE_CAPABILITIES)
    libc.clear_capabilities(keep=TEMPLATE_CAPABILITIES)
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if template_bpf:
        libc.install_seccomp_filter(template_bpf)


def unshare_copy() -> None:
    """New PID, mount, network, IPC, UTS and cgroup namespaces for a copy (owned by the
    template's user namespace); the next child is PID 1 of the copy."""
    libc.unshare(libc.CLONE_NEWPID | libc.CLONE_NEWNS | libc.CLONE_NEWNET | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS
                 | libc.CLONE_NEWCGROUP)


def enter_copy(tmp_mb: int, tmp_disk: int = -1) -> None:
    """In a copy (PID 1 of its PID namespace): its own /proc, its own /tmp holding what the
    template's init left there (as a snapshot would), and `lo` up. The /tmp is the disk
    `tmp_disk` (a detached mount made by the server, see tmpdisk.py), or else a tmpfs."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    template_tmp = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY)
    try:
        if tmp_disk >= 0:
            libc.move_mount(tmp_disk, "/tmp")
            os.close(tmp_disk)
        else:
            libc.mount("tmpfs", "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "size=%dm,mode=1777" % tmp_mb)
        names = os.listdir(template_tmp)
        if names:
            import shutil  # rarely needed; from the standard library, which every root has

            # Entry by entry: /tmp itself is the server's (a disk's root), not the copy's to chmod.
            source = "/proc/self/fd/%d" % template_tmp
            for name in names:
                if os.path.isdir(os.path.join(source, name)) and not os.path.islink(os.path.join(source, name)):
                    shutil.copytree(os.path.join(source, name), "/tmp/" + name, symlinks=True)
                else:
                    shutil.copy2(os.path.join(source, name), "/tmp/" + name, follow_symlinks=False)
    finally:
        os.close(template_tmp)
    libc.mount("proc", "/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    loopback_up()


def seal_copy(seccomp_bpf: Optional[bytes], dumpable: bool = True) -> None:
    """A copy's process gives up the template's capabilities and takes the environment filter."""
    libc.drop_bounding_set()
    libc.clear_capabilities()
    if seccomp_bpf:
        libc.install_seccomp_filter(seccomp_bpf)
    if not dumpable:
        libc.prctl(libc.PR_SET_DUMPABLE, 0)


def die_with_parent() -> None:
    import signal

    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)


def keep_only_fds(keep: List[int]) -> List[int]:
    """Close every inherited descriptor but 0-2 and `keep`; returns where the kept ones now are.

    The kept descriptors end up at 3, 4, ... so that one close_range() closes all the rest.
    """
    # Park them above the target range first, so that no move overwrites another.
    parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 256) for fd in keep]
    for i, fd in enumerate(parked):
        os.dup2(fd, 3 + i)
    first = 3 + len(keep)
    if not libc.close_range(first):
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= first:
                try:
                    os.close(int(name))
                except OSError:
                    pass
    return [3 + i for i in range(len(keep))]


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
