"""The host side of environments' network: one bridge per server, its addresses and its rules.

At start the server claims a /20 of 198.18.0.0/15 that no other server and no route of the
host uses, makes the bridge `lsbr<tag>` with the gateway address (.1), and loads its
nftables tables (rules.py). Each environment then gets one address of the /20 and a veth
named `lsv<tag><n>`, made by the jailer inside the environment (sandbox/jail.py); the veth
goes away with the environment's network namespace, whatever ended it.

What a server leaves when it is killed (the bridge and the tables) is removed by the next
server to start on the host: each server records its PID under /run/lambdastack, and a
record whose process is gone marks leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lambdastack.network import rules
from lambdastack.sandbox.cgroups import pid_alive

log = logging.getLogger("lambdastack.network")

RUN_DIR = Path("/run/lambdastack")
HOST_ALIAS = "host.lambdastack.internal"
EGRESS_MODES = ("public", "private", "none")


HOST_PLACEHOLDER = "{host}"


def functions_view(url: str | None) -> tuple[str | None, int | None]:
    """A URL on the host's loopback as functions must write it (its host a placeholder for
    the host alias), and its port; (None, None) for any other URL."""
    if not url:
        return None, None
    parts = urlsplit(url)
    host = parts.hostname or ""
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback:
        return None, None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return urlunsplit(parts._replace(netloc=f"{HOST_PLACEHOLDER}:{port}")), port


class NetworkUnavailable(Exception):
    """This host cannot give environments a network (no root, no nft, no veth)."""


@dataclass
class NetworkSettings:
    egress: str = "public"  # public | private | none
    allow_host_ports: tuple[int, ...] = ()
    resolv_conf: Path = Path("/etc/resolv.conf")  # whose first IPv4 nameserver answers environments' DNS


@dataclass
class HostNetwork:
    settings: NetworkSettings
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    plan: rules.Plan | None = None
    endpoint: socket.socket | None = None  # the Lambda API for functions, on the gateway
    _free: list[str] = field(default_factory=list)
    _leases: dict[str, str] = field(default_factory=dict)  # environment id -> address
    _next_veth: int = 0
    bridge_index: int = 0

    @property
    def enabled(self) -> bool:
        return self.plan is not None

    @property
    def gateway(self) -> str | None:
        return self.plan.gateway if self.plan is not None else None

    def describe(self) -> dict[str, object]:
        if self.plan is None:
            return {"egress": "none"}
        return {"egress": self.plan.egress, "bridge": self.plan.bridge, "subnet": self.plan.subnet,
                "gateway": self.plan.gateway, "host_alias": HOST_ALIAS,
                "allowed_host_ports": list(self.plan.host_ports)}

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        """Sweep what dead servers left, then claim a subnet, make the bridge and load the rules."""
        if self.settings.egress == "none":
            return
        if os.geteuid() != 0:
            raise NetworkUnavailable("giving environments a network needs root")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise NetworkUnavailable(f"giving environments a network needs the `{tool}` command")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        with _host_lock():
            sweep()
            subnet = _free_subnet()
            gateway = str(next(subnet.hosts()))
            bridge = f"lsbr{self.tag}"
            _record(self.tag, os.getpid())
            try:
                _run("ip", "link", "add", bridge, "type", "bridge")
                _sysctl(f"net/ipv6/conf/{bridge}/disable_ipv6", "1")
                _sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")  # allowed host ports live on loopback
                _run("ip", "addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", bridge)
                _run("ip", "link", "set", bridge, "up")
                self.bridge_index = socket.if_nametoindex(bridge)
                self.endpoint = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.endpoint.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.endpoint.bind((gateway, 0))
                self.plan = rules.Plan(
                    tag=self.tag, bridge=bridge, veth_prefix=f"lsv{self.tag}", subnet=str(subnet), gateway=gateway,
                    egress=self.settings.egress, host_ports=tuple(sorted(set(self.settings.allow_host_ports))),
                    endpoint_port=self.endpoint.getsockname()[1], resolver=_resolver(self.settings.resolv_conf),
                )
                _nft(rules.ruleset(self.plan))
                if _sysctl_read("net/ipv4/ip_forward") != "1":
                    log.warning("enabling IPv4 forwarding on this host (net.ipv4.ip_forward=1): environments reach "
                                "the network through NAT")
                    _sysctl("net/ipv4/ip_forward", "1")
            except BaseException:
                self.stop()
                raise
        self._free = [str(a) for a in subnet.hosts()][1:]
        self._free.reverse()
        log.info("network: environments on %s behind %s (egress %s, host ports %s, DNS via %s)", subnet, bridge,
                 self.plan.egress, list(self.plan.host_ports) or "none", self.plan.resolver or "none")

    async def open(self) -> None:
        await asyncio.to_thread(self.start)

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None
        remove(self.tag)
        self.plan = None

    # ------------------------------------------------------------------ environments

    def lease(self, env_id: str) -> dict[str, object] | None:
        """What the jailer needs to plug environment `env_id` in (None: loopback only)."""
        if self.plan is None:
            return None
        if not self._free:
            raise NetworkUnavailable("no address left for another environment")
        address = self._free.pop()
        self._leases[env_id] = address
        self._next_veth += 1
        return {"bridge_index": self.bridge_index, "host_if": f"{self.plan.veth_prefix}{self._next_veth:x}",
                "address": address, "gateway": self.plan.gateway}

    async def attach(self, env_id: str, pid: int) -> None:
        """Nothing to do: the jailer plugged the environment in itself (see `lease`)."""

    def release(self, env_id: str) -> None:
        address = self._leases.pop(env_id, None)
        if address is not None:
            self._free.insert(0, address)  # reused last: its old veth may take a moment to go

    def etc_files(self) -> dict[str, str]:
        """The /etc/hosts and /etc/resolv.conf environments see."""
        if self.plan is None:
            return {}
        return {
            "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{self.plan.gateway}\t{HOST_ALIAS}\n",
            "resolv.conf": f"nameserver {self.plan.gateway}\noptions timeout:2 attempts:2\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
        }

    def endpoint_url(self) -> str | None:
        """Where functions reach the Lambda API (AWS_ENDPOINT_URL_LAMBDA)."""
        if self.plan is None:
            return None
        return f"http://{self.plan.gateway}:{self.plan.endpoint_port}"


# ---------------------------------------------------------------------- leftovers


def sweep() -> int:
    """Remove the bridges and tables of servers that are gone; returns how many servers left some."""
    swept = 0
    for record in RUN_DIR.glob("network-*.json"):
        try:
            pid = int(json.loads(record.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            pid = 0
        if pid and pid_alive(pid):
            continue
        remove(record.stem[len("network-"):])
        swept += 1
    return swept


def remove(tag: str) -> None:
    """Remove everything a server with `tag` made (the veths go with their environments)."""
    with contextlib.suppress(NetworkUnavailable, OSError):
        _nft(rules.teardown(tag))
    if Path(f"/sys/class/net/lsbr{tag}").exists():
        with contextlib.suppress(NetworkUnavailable, OSError):
            _run("ip", "link", "del", f"lsbr{tag}")
    with contextlib.suppress(OSError):
        (RUN_DIR / f"network-{tag}.json").unlink()


def _record(tag: str, pid: int) -> None:
    (RUN_DIR / f"network-{tag}.json").write_text(json.dumps({"pid": pid}))


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """One server at a time picks a subnet and makes its bridge."""
    with open(RUN_DIR / "network.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _free_subnet() -> ipaddress.IPv4Network:
    used: list[ipaddress.IPv4Network] = []
    routes = json.loads(_run("ip", "-j", "-4", "route", "show", "table", "all") or "[]")
    addresses = json.loads(_run("ip", "-j", "-4", "addr", "show") or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(dst, strict=False))
    for link in addresses:
        for info in link.get("addr_info", ()):
            with contextlib.suppress(ValueError, KeyError):
                used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for candidate in ipaddress.IPv4Network(rules.ENVIRONMENT_RANGE).subnets(new_prefix=20):
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise NetworkUnavailable(f"every /20 of {rules.ENVIRONMENT_RANGE} is in use on this host")


def _resolver(resolv_conf: Path) -> str | None:
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(parts[1]).version == 4:
                    return parts[1]
    return None


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise NetworkUnavailable(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def _nft(text: str) -> None:
    result = subprocess.run(["nft", "-f", "-"], input=text, capture_output=True, text=True)
    if result.returncode != 0:
        raise NetworkUnavailable(f"nft refused the rules: {result.stderr.strip()}")


def _sysctl(name: str, value: str) -> None:
    Path("/proc/sys", name).write_text(value)


def _sysctl_read(name: str) -> str:
    return Path("/proc/sys", name).read_text().strip()
