"""User-mode networking for environments under `userns` isolation (a server without root).

Without root there is no bridge, no veth and no host firewall. Each environment still has
its own network namespace (inside the server's user namespace); after the zygote has made it,
the server attaches a user-mode TCP/IP stack, slirp4netns, which gives the namespace a tap
device (`tap0`, 198.18.0.100/24) and carries its connections out through ordinary sockets of
the server's user: the world sees them come from the host.

What an environment may reach is decided inside its own namespace, where the server's user
holds CAP_NET_ADMIN and the function does not (its capabilities are gone before its code
runs): an nftables output chain (rules.environment_ruleset) refuses the host's own addresses,
link-local and reserved ranges, the private ranges unless `--egress private`, and IPv6. The
gateway, 198.18.0.2, is the host's loopback; only the Lambda API port, the ports the
operator allowed and the DNS relay (dns_relay.py) are open there.

slirp4netns needs /dev/net/tun readable and writable by the server's user (mode 0666, as
most distributions ship it). Each runs until its environment goes, or until the server
does: it watches a pipe whose other end only the server holds (`--exit-fd`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

from lambdastack.network import rules
from lambdastack.network.dns_relay import DnsRelay
from lambdastack.network.host import HOST_ALIAS, NetworkSettings, NetworkUnavailable, _resolver

log = logging.getLogger("lambdastack.network")

CIDR = "198.18.0.0/24"
GATEWAY = "198.18.0.2"  # slirp's: the host's loopback
DNS = "198.18.0.3"
TUN = "/dev/net/tun"
READY_TIMEOUT_S = 5.0
NETNS_WAIT_S = 2.0
# Where the tools live, also when the server's user has no sbin on its PATH.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])


@dataclass
class _Link:
    slirp: subprocess.Popen[bytes]
    exit_w: int  # slirp4netns exits once this closes


@dataclass
class UserModeNetwork:
    settings: NetworkSettings
    api_port: int | None  # the server's own port, where functions reach the Lambda API (None: not on loopback)
    relay: DnsRelay | None = None
    endpoint: socket.socket | None = None  # functions use the server's own port
    plan: rules.EnvironmentPlan | None = None
    _tools: dict[str, str] = field(default_factory=dict)
    _ruleset: str = ""
    _links: dict[str, _Link] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.plan is not None

    @property
    def gateway(self) -> str | None:
        return GATEWAY if self.plan is not None else None

    def describe(self) -> dict[str, object]:
        if self.plan is None:
            return {"egress": "none"}
        return {"egress": self.plan.egress, "via": "slirp4netns", "subnet": CIDR, "gateway": GATEWAY,
                "host_alias": HOST_ALIAS, "allowed_host_ports": sorted(set(self.settings.allow_host_ports))}

    # ------------------------------------------------------------------ start and stop

    async def open(self) -> None:
        if self.settings.egress == "none":
            return
        for tool in ("slirp4netns", "nsenter", "nft"):
            path = shutil.which(tool, path=SEARCH_PATH)
            if path is None:
                raise NetworkUnavailable(f"user-mode networking needs the `{tool}` command")
            self._tools[tool] = path
        try:
            os.close(os.open(TUN, os.O_RDWR | os.O_CLOEXEC))
        except OSError as e:
            raise NetworkUnavailable(f"user-mode networking needs {TUN} readable and writable by this user "
                                     f"({e.strerror})") from None
        resolver = _resolver(self.settings.resolv_conf)
        if resolver is not None:
            self.relay = DnsRelay(resolver)
            await self.relay.start()
        relay_port = self.relay.port if self.relay is not None else None
        ports = set(self.settings.allow_host_ports) | ({self.api_port} if self.api_port else set())
        if relay_port:
            ports.add(relay_port)
        self.plan = rules.EnvironmentPlan(
            gateway=GATEWAY, dns=DNS, egress=self.settings.egress, host_addresses=tuple(_host_addresses()),
            gateway_ports=tuple(sorted(ports)), relay_port=relay_port,
        )
        self._ruleset = rules.environment_ruleset(self.plan)
        log.info("network: environments through slirp4netns (egress %s, host ports %s, DNS via %s)",
                 self.plan.egress, sorted(self.settings.allow_host_ports) or "none", resolver or "none")

    async def close(self) -> None:
        for env_id in list(self._links):
            self.release(env_id)
        if self.relay is not None:
            await self.relay.stop()
        self.plan = None

    # ------------------------------------------------------------------ environments

    def lease(self, env_id: str) -> dict[str, object] | None:
        """Nothing for the jailer: the namespace it makes is attached from outside (`attach`)."""
        return None

    async def attach(self, env_id: str, pid: int) -> None:
        """Give environment `env_id` (PID 1 `pid` on the host) its tap device and its rules."""
        if self.plan is not None:
            self._links[env_id] = await asyncio.to_thread(self._attach, pid)

    def _attach(self, pid: int) -> _Link:
        _wait_for_own_netns(pid)
        ready_r, ready_w = os.pipe()
        exit_r, exit_w = os.pipe()
        os.set_inheritable(exit_w, False)
        try:
            slirp = subprocess.Popen(
                [self._tools["slirp4netns"], "--configure", "--mtu=65520", f"--cidr={CIDR}",
                 f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(pid), "tap0"],
                pass_fds=(ready_w, exit_r), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as e:
            for fd in (ready_r, ready_w, exit_r, exit_w):
                os.close(fd)
            raise NetworkUnavailable(f"slirp4netns: {e}") from None
        os.close(ready_w)
        os.close(exit_r)
        link = _Link(slirp, exit_w)
        try:
            rules_loaded = subprocess.run(
                [self._tools["nsenter"], f"--target={pid}", "--user", "--net", "--preserve-credentials",
                 self._tools["nft"], "-f", "-"], input=self._ruleset, capture_output=True, text=True,
            )
            if rules_loaded.returncode != 0:
                raise NetworkUnavailable(f"nft refused an environment's rules: {rules_loaded.stderr.strip()}")
            readable, _, _ = select.select([ready_r], [], [], READY_TIMEOUT_S)
            if not readable or os.read(ready_r, 1) != b"1":
                slirp.kill()
                _, stderr = slirp.communicate()
                raise NetworkUnavailable(f"slirp4netns did not start: {stderr.decode(errors='replace').strip()}")
        except BaseException:
            self._end(link)
            raise
        finally:
            os.close(ready_r)
        assert slirp.stderr is not None
        slirp.stderr.close()  # it says little, and nobody would read it
        return link

    def release(self, env_id: str) -> None:
        link = self._links.pop(env_id, None)
        if link is not None:
            self._end(link)

    @staticmethod
    def _end(link: _Link) -> None:
        """Close the stack's exit pipe, and reap it once it is gone (a thread of its own waits)."""
        with contextlib.suppress(OSError):
            os.close(link.exit_w)
        threading.Thread(target=_reap, args=(link.slirp,), name="slirp-reaper", daemon=True).start()

    def etc_files(self) -> dict[str, str]:
        """The /etc/hosts and /etc/resolv.conf environments see."""
        if self.plan is None:
            return {}
        return {
            "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{GATEWAY}\t{HOST_ALIAS}\n",
            "resolv.conf": f"nameserver {DNS}\noptions timeout:2 attempts:2\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
        }

    def endpoint_url(self) -> str | None:
        """Where functions reach the Lambda API (AWS_ENDPOINT_URL_LAMBDA)."""
        if self.plan is None or not self.api_port:
            return None
        return f"http://{GATEWAY}:{self.api_port}"


def _reap(slirp: subprocess.Popen[bytes]) -> None:
    try:
        slirp.wait(timeout=READY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        slirp.kill()
        slirp.wait()


def _wait_for_own_netns(pid: int) -> None:
    """Wait until environment `pid` has left the server's network namespace for its own: the
    zygote answers with the PID as soon as it has forked, a moment before the unshare."""
    ours = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + NETNS_WAIT_S
    while True:
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != ours:
                return
        except OSError:
            raise NetworkUnavailable("the environment ended before its network was attached") from None
        if time.monotonic() > deadline:
            raise NetworkUnavailable("the environment did not make its network namespace")
        time.sleep(0.0002)


def _host_addresses() -> list[str]:
    """The IPv4 addresses of the host's interfaces (other than loopback, blocked anyway)."""
    try:
        ip = shutil.which("ip", path=SEARCH_PATH) or "ip"
        out = subprocess.run([ip, "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
        links = json.loads(out or "[]")
    except (OSError, subprocess.CalledProcessError, ValueError):
        return []
    found: list[str] = []
    for link in links:
        for info in link.get("addr_info", ()):
            with contextlib.suppress(ValueError, KeyError):
                address = ipaddress.IPv4Address(info["local"])
                if not address.is_loopback:
                    found.append(str(address))
    return found
