"""A server without root (user namespaces) gives functions the network too, through a
user-mode stack (slirp4netns), and keeps them off the host as the root server does.

The server runs as an unprivileged user. Most distributions let any user open
/dev/net/tun (mode 0666); this machine does not, so the server runs in a mount namespace of
its own where /dev/net holds a tun node with that mode: the host's device file is left as
it is. The "internet" is the test's own network namespace (nethosts.py)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nethosts
import pytest
import requests
import unprivileged
from helpers import Server, create_function, invoke, invoke_ok, stored_log, wait_for
from nethosts import METADATA, PAGE, PRIVATE, PUBLIC
from test_network import CALLER, PROBE

pytestmark = pytest.mark.skipif(
    shutil.which("slirp4netns") is None or shutil.which("nft") is None,
    reason="user-mode networking needs slirp4netns and nftables",
)

LOOPBACK_RESOLVER = "127.0.0.78"
TEST_DOMAIN = "user-mode.example.test"

# /dev/net/tun as most distributions ship it (0666), in the server's own mount namespace only.
TUN_AS_DISTRIBUTIONS_SHIP_IT = [
    "unshare", "--mount", "--propagation", "private", "sh", "-c",
    'mount -t tmpfs -o mode=0755 tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"', "tun",
]


@pytest.fixture(scope="module")
def internet() -> Iterator[nethosts.Internet]:
    with nethosts.internet() as host:
        yield host


@pytest.fixture(scope="module")
def server(internet: Any) -> Iterator[Server]:
    """Functions may reach the host's PostgreSQL (5432); the host's resolver is on a loopback
    address other than 127.0.0.1 (as systemd-resolved's 127.0.0.53 is)."""
    dns = nethosts.DnsServer(LOOPBACK_RESOLVER, {TEST_DOMAIN: PUBLIC})
    folder = Path(tempfile.mkdtemp(prefix="lambdastack-resolv-"))
    folder.chmod(0o755)
    try:
        resolv_conf = dns.resolv_conf(folder)
        resolv_conf.chmod(0o644)
        with unprivileged.unprivileged_server("--allow-host-port", "5432", "--resolv-conf", str(resolv_conf),
                                              wrapper=TUN_AS_DISTRIBUTIONS_SHIP_IT) as srv:
            yield srv
    finally:
        dns.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def lam(server: Server) -> Any:
    return server.client()


def network_of(server: Server) -> dict[str, Any]:
    return requests.get(server.url + "/_lambdastack/health", timeout=5).json()["network"]  # type: ignore[no-any-return]


def python_of(lam: Any) -> str:
    """A Python runtime the server's user can run (not every interpreter of the host is reachable)."""
    runtimes = requests.get(lam.meta.endpoint_url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    return next(r for r in runtimes if r.startswith("python"))


def probe(lam: Any) -> str:
    return create_function(lam, PROBE, runtime=python_of(lam), Timeout=30)


def slirps_of(user: str) -> list[str]:
    out = subprocess.run(["pgrep", "-u", user, "-x", "slirp4netns"], capture_output=True, text=True).stdout
    return out.split()


def test_unprivileged_functions_resolve_names_and_fetch_pages(lam: Any, server: Server) -> None:
    health = requests.get(server.url + "/_lambdastack/health", timeout=5).json()
    assert health["isolation"].startswith("userns"), health["isolation"]
    assert network_of(server)["via"] == "slirp4netns"
    name = probe(lam)
    out = invoke_ok(lam, name, {"resolve": TEST_DOMAIN,
                                "fetch": {"by_name": f"http://{TEST_DOMAIN}/", "by_address": f"http://{PUBLIC}/"}})
    assert out["resolved"] == PUBLIC
    assert out["by_name"] == out["by_address"] == PAGE.decode()


def test_unprivileged_functions_are_kept_off_the_host_and_private_places(lam: Any, server: Server) -> None:
    """The server's port at the gateway is the Lambda API (open); the host's PostgreSQL is an
    allowed port (open); every other host port, the host's own addresses, the metadata address
    and a private address are refused at once. The private and metadata addresses are the test
    host's own, so an attempt that got through would be seen as `connected`."""
    gateway = network_of(server)["gateway"]
    targets = {
        "public": [PUBLIC, 80],
        "api_at_gateway": [gateway, server.port],
        "allowed_postgresql": [gateway, 5432],
        "other_host_port": [gateway, 6379],
        "api_at_host_address": [nethosts.HOST_SIDE, server.port],
        "metadata": [METADATA, 80],
        "private": [PRIVATE, 80],
    }
    out = invoke_ok(lam, probe(lam), {"connect": targets})["connect"]
    for target in ("public", "api_at_gateway", "allowed_postgresql"):
        assert out.pop(target)["outcome"] == "connected", target
    for target, result in out.items():
        assert result["outcome"] in ("ConnectionRefusedError", "OSError"), (target, result)
        assert result["seconds"] < 1.0, (target, result)


def test_unprivileged_function_invokes_another_with_no_endpoint_in_its_code(lam: Any, server: Server) -> None:
    target = probe(lam)
    caller = create_function(lam, CALLER, runtime=python_of(lam), Timeout=30)
    mark = f"MARK_{uuid.uuid4().hex}"
    out = invoke_ok(lam, caller, {"target": target, "mark": mark})
    assert out == {"sync": {"connect": {}, "env": {"AWS_LAMBDA_FUNCTION_NAME": target}}, "queued": 202}
    assert wait_for(lambda: sum("START RequestId" in line for lines in stored_log(server, lam, target).values()
                                for line in lines) >= 2, timeout=20)


def test_a_function_cannot_lift_its_own_rules(lam: Any) -> None:
    """The rules live in the environment's own namespace; the function holds no capability there."""
    source = PROBE.replace("def handler(event, context):", '''def handler(event, context):
    import subprocess
    if event.get("nft"):
        return subprocess.run([NFT, "flush", "ruleset"], capture_output=True, text=True).returncode''').replace(
        "NFT", repr(shutil.which("nft")))  # the host's /usr is the environment's
    name = create_function(lam, source, runtime=python_of(lam), Timeout=30)
    r = invoke(lam, name, {"nft": True})
    assert r.function_error is None, r.payload
    assert r.result != 0  # Operation not permitted
    out = invoke_ok(lam, name, {"connect": {"private": [PRIVATE, 80]}})["connect"]
    assert out["private"]["outcome"] == "ConnectionRefusedError"


def test_each_environment_has_one_stack_and_none_outlives_its_server(internet: Any) -> None:
    """An environment's slirp4netns goes with it; after a kill -9 of the server, with the server."""
    user = unprivileged.UNPRIVILEGED_USER
    others = set(slirps_of(user))  # the module's server's

    def ours() -> set[str]:
        return set(slirps_of(user)) - others

    with unprivileged.unprivileged_server(wrapper=TUN_AS_DISTRIBUTIONS_SHIP_IT) as srv:
        lam = srv.client()
        names = [probe(lam) for _ in range(2)]
        for name in names:
            out = invoke_ok(lam, name, {"connect": {"public": [PUBLIC, 80]}})["connect"]
            assert out["public"]["outcome"] == "connected"
        assert len(ours()) == 2, ours()
        lam.delete_function(FunctionName=names[0])  # its environment goes, and its stack with it
        assert wait_for(lambda: len(ours()) == 1, timeout=10), ours()
        srv.kill()
        assert wait_for(lambda: not ours(), timeout=10), ours()
