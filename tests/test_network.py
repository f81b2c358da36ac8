"""Functions reach the world as on Lambda, and nothing else: a test "internet" host in a
network namespace of the test's own, the host's real PostgreSQL through an allowed port, the
Lambda API from inside a function with no endpoint in its code, and disk-backed /tmp."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import image_builder as ib
import nethosts
import pytest
import requests
import runtimes_functions as fn
from helpers import (
    Server,
    create_function,
    free_port,
    invoke,
    invoke_ok,
    stored_log,
    unique,
    wait_for,
)
from nethosts import METADATA, PAGE, PRIVATE, PUBLIC

from bench.common import distribution_files

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="environments' network needs root and nftables"
)

LOOPBACK_RESOLVER = "127.0.0.77"
TEST_DOMAIN = "www.example.test"

PROBE = """
import json, os, socket, time, urllib.request

def attempt(host, port):
    started = time.monotonic()
    try:
        socket.create_connection((host, port), timeout=5).close()
        outcome = "connected"
    except OSError as e:
        outcome = type(e).__name__
    return {"outcome": outcome, "seconds": time.monotonic() - started}

def handler(event, context):
    out = {"connect": {k: attempt(*v) for k, v in event.get("connect", {}).items()}}
    for key, url in event.get("fetch", {}).items():
        out[key] = urllib.request.urlopen(url, timeout=5).read().decode()
    if event.get("resolve"):
        out["resolved"] = socket.gethostbyname(event["resolve"])
    if event.get("whoami"):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.connect(("198.51.100.10", 9))
        out["address"] = probe.getsockname()[0]
    if event.get("listen"):
        import threading
        server = socket.socket()
        server.bind(("0.0.0.0", event["listen"]))
        server.listen(8)
        threading.Thread(target=lambda: [server.accept() for _ in iter(int, 1)], daemon=True).start()
    if event.get("env"):
        out["env"] = {k: os.environ.get(k) for k in event["env"]}
    return out
"""


@pytest.fixture(scope="module")
def internet() -> Iterator[nethosts.Internet]:
    with nethosts.internet() as host:
        yield host


@pytest.fixture(scope="module")
def dns() -> Iterator[nethosts.DnsServer]:
    """The host's resolver, on a loopback address (as systemd-resolved's 127.0.0.53 is)."""
    server = nethosts.DnsServer(LOOPBACK_RESOLVER, {TEST_DOMAIN: PUBLIC})
    yield server
    server.close()


def _server(tmp: Path, dns: nethosts.DnsServer, *extra: str) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    return Server(tmp / "data", "--resolv-conf", str(dns.resolv_conf(tmp)), *extra).start()


@pytest.fixture(scope="module")
def net_server(tmp_path_factory: pytest.TempPathFactory, internet: Any, dns: Any) -> Iterator[Server]:
    """Functions may reach the host's PostgreSQL (5432)."""
    srv = _server(tmp_path_factory.mktemp("net"), dns, "--allow-host-port", "5432")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory, internet: Any, dns: Any) -> Iterator[Server]:
    """The defaults: no host port allowed."""
    srv = _server(tmp_path_factory.mktemp("closed"), dns)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def lam(net_server: Server) -> Any:
    return net_server.client()


def probe(lam: Any, runtime: str = "python3.12", **config: Any) -> str:
    return create_function(lam, PROBE, runtime=runtime, Timeout=30, **config)


def health(server: Server) -> dict[str, Any]:
    return requests.get(server.url + "/_lambdastack/health", timeout=5).json()


# ------------------------------------------------------------------------------ out to the world


def test_python_function_fetches_a_page_by_name_and_by_address(lam: Any, dns: nethosts.DnsServer) -> None:
    name = probe(lam)
    out = invoke_ok(lam, name, {"fetch": {"by_name": f"http://{TEST_DOMAIN}/", "by_address": f"http://{PUBLIC}/"},
                                "resolve": TEST_DOMAIN})
    assert out["by_name"] == out["by_address"] == PAGE.decode()
    assert out["resolved"] == PUBLIC
    assert TEST_DOMAIN in dns.queries  # asked of the host's resolver, which listens on its loopback


def test_nodejs_function_fetches_a_page_by_name_and_by_address(lam: Any, net_server: Server) -> None:
    runtimes = health(net_server)["runtimes"]
    node = next((r for r in runtimes if r.startswith("nodejs")), None)
    if node is None:
        pytest.skip("no Node.js on this host")
    source = """
const http = require('http');
const get = (url) => new Promise((resolve, reject) => {
  http.get(url, (res) => { let body = ''; res.on('data', (c) => body += c); res.on('end', () => resolve(body)); })
    .on('error', reject);
});
exports.handler = async (event) => ({ byName: await get(event.byName), byAddress: await get(event.byAddress) });
"""
    name = create_function(lam, files={"index.js": source}, handler="index.handler", runtime=node, Timeout=30)
    out = invoke_ok(lam, name, {"byName": f"http://{TEST_DOMAIN}/", "byAddress": f"http://{PUBLIC}/"})
    assert out == {"byName": PAGE.decode(), "byAddress": PAGE.decode()}


IMAGE_APP = PROBE


@pytest.fixture(scope="module")
def image_uri(registry: ib.Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python image (awslambdaric) whose own /etc/hosts and /etc/resolv.conf know nothing of
    lambdastack (its resolver is the test host's private address: never reached)."""
    if fn.host_python3() is None:
        pytest.skip("no /usr/bin/python3 on this host to build the image's Python from")
    workdir = tmp_path_factory.mktemp("image")
    ric = dict(fn.vendored_awslambdaric(str(workdir / "ric")))
    layer_path = workdir / "python.tar.gz"
    ib.host_python_layer(layer_path, tuple(str(workdir / "ric" / n) for n in ric if str(n).endswith(".so")))
    image = ib.Image(workdir / "layout", entrypoint=["python3", "-m", "awslambdaric"], cmd=["app.handler"],
                     working_dir="/var/task", env=["LAMBDA_TASK_ROOT=/var/task"])
    image.add_layer_file(layer_path)
    files = [ib.file(f"var/task/{name}", content, 0o644) for name, content in {"app.py": IMAGE_APP, **ric}.items()]
    files += [ib.file("etc/hosts", "127.0.0.1\tlocalhost\n"), ib.file("etc/resolv.conf", f"nameserver {PRIVATE}\n")]
    image.add_layer(ib.layer(files))
    return registry.push(image.write(), "network/python", "v1")


def test_container_image_function_resolves_and_fetches(lam: Any, image_uri: str) -> None:
    name = unique("img")
    lam.create_function(FunctionName=name, Role="arn:aws:iam::000000000000:role/r", PackageType="Image",
                        Code={"ImageUri": image_uri}, Timeout=30)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    out = invoke_ok(lam, name, {"fetch": {"by_name": f"http://{TEST_DOMAIN}/"}, "resolve": "host.lambdastack.internal"})
    assert out["by_name"] == PAGE.decode()
    assert out["resolved"] == health_of(lam)["gateway"]


def health_of(lam: Any) -> dict[str, Any]:
    return requests.get(lam.meta.endpoint_url + "/_lambdastack/health", timeout=5).json()["network"]


# ------------------------------------------------------------------------------ what stays closed


def test_forbidden_places_fail_fast(lam: Any, net_server: Server) -> None:
    """The API port (at every host address), another host port, the metadata address, a private
    address and another environment: each refused at once, while the same test host answers on
    its public address. The private and metadata addresses are the test host's own, so an
    attempt that got through would be seen as `connected`."""
    status = health(net_server)["network"]
    listener = probe(lam)
    neighbour = invoke_ok(lam, listener, {"whoami": True, "listen": 8080})["address"]
    name = probe(lam)
    targets = {
        "public": [PUBLIC, 80],
        "api_at_gateway": [status["gateway"], net_server.port],
        "api_at_host_address": [nethosts.HOST_SIDE, net_server.port],
        "other_host_port": [status["gateway"], 6379],
        "metadata": [METADATA, 80],
        "private": [PRIVATE, 80],
        "neighbour": [neighbour, 8080],
    }
    out = invoke_ok(lam, name, {"connect": targets})["connect"]
    assert out.pop("public")["outcome"] == "connected"
    for target, result in out.items():
        assert result["outcome"] in ("ConnectionRefusedError", "OSError"), (target, result)
        assert result["seconds"] < 1.0, (target, result)


def test_egress_private_reaches_private_ranges_and_none_reaches_nothing(
    tmp_path: Path, internet: Any, dns: nethosts.DnsServer
) -> None:
    private = _server(tmp_path / "private", dns, "--egress", "private")
    none = _server(tmp_path / "none", dns, "--egress", "none")
    try:
        assert health(private)["network"]["egress"] == "private"
        assert health(none)["network"] == {"egress": "none"}
        targets = {"private": [PRIVATE, 80], "metadata": [METADATA, 80], "public": [PUBLIC, 80]}
        out = invoke_ok(private.client(), probe(private.client()), {"connect": targets})["connect"]
        assert out["private"]["outcome"] == out["public"]["outcome"] == "connected"
        assert out["metadata"]["outcome"] == "ConnectionRefusedError"
        out = invoke_ok(none.client(), probe(none.client()), {"connect": targets})["connect"]
        assert {r["outcome"] for r in out.values()} == {"OSError"}  # ENETUNREACH: loopback only
        assert all(r["seconds"] < 1.0 for r in out.values()), out
    finally:
        private.stop()
        none.stop()


# ------------------------------------------------------------------------------ host services


PG_WRITER = """
import pg8000.native

def handler(event, context):
    conn = pg8000.native.Connection("postgres", host="host.lambdastack.internal", port=5432, database="test",
                                    timeout=5)
    conn.run("CREATE TABLE IF NOT EXISTS lambdastack_network_test (mark text)")
    conn.run("INSERT INTO lambdastack_network_test VALUES (:mark)", mark=event["mark"])
    conn.close()
    return "written"
"""


def _postgres_up() -> None:
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True).returncode == 0:
        return
    clusters = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if not clusters:
        pytest.skip("no PostgreSQL on this host")
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", clusters[0], "main", "start"], check=False)
    if not wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1"], capture_output=True).returncode == 0):
        pytest.skip("PostgreSQL did not start")


def _create_pg_writer(lam: Any) -> str:
    """The function, with the pure-Python pg8000 and what it needs, from the test environment."""
    return create_function(lam, files={"app.py": PG_WRITER, **distribution_files("pg8000")}, runtime="python3.12",
                           Timeout=30)


def test_function_writes_to_the_hosts_postgresql_through_an_allowed_port(lam: Any, closed_server: Server) -> None:
    _postgres_up()
    mark = uuid.uuid4().hex
    assert invoke_ok(lam, _create_pg_writer(lam), {"mark": mark}) == "written"
    rows = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tA", "-c",
         f"SELECT count(*) FROM lambdastack_network_test WHERE mark = '{mark}'"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert rows == "1"
    # Without --allow-host-port 5432, the same function gets a fast error.
    closed = closed_server.client()
    started = time.monotonic()
    r = invoke(closed, _create_pg_writer(closed), {"mark": mark})
    assert r.function_error == "Unhandled"
    assert "Can't create a connection" in r.result["errorMessage"], r.result
    assert time.monotonic() - started < 4  # refused at once: pg8000 would wait 5 s for a timeout


# ------------------------------------------------------------------------------ back into the platform


CALLER = """
import boto3, json

def handler(event, context):
    lam = boto3.client("lambda")
    sync = lam.invoke(FunctionName=event["target"], Payload=json.dumps({"env": ["AWS_LAMBDA_FUNCTION_NAME"]}))
    queued = lam.invoke(FunctionName=event["target"], InvocationType="Event",
                        Payload=json.dumps({"fetch": {}, "env": [event["mark"]]}))
    return {"sync": json.loads(sync["Payload"].read()), "queued": queued["StatusCode"]}
"""


def test_function_invokes_another_function_with_no_endpoint_in_its_code(lam: Any, net_server: Server) -> None:
    target = probe(lam)
    caller = create_function(lam, CALLER, runtime="python3.12", Timeout=30)
    mark = f"MARK_{uuid.uuid4().hex}"
    out = invoke_ok(lam, caller, {"target": target, "mark": mark})
    assert out == {"sync": {"connect": {}, "env": {"AWS_LAMBDA_FUNCTION_NAME": target}}, "queued": 202}
    # The queued event ran too: its START line and its request in the target's log.
    assert wait_for(lambda: sum("START RequestId" in line for lines in stored_log(net_server, lam, target).values()
                                for line in lines) >= 2, timeout=20)


def test_function_credentials_are_its_own_and_short_lived(lam: Any) -> None:
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_LAMBDA"]
    first, second = probe(lam), probe(lam)
    a = invoke_ok(lam, first, {"env": names})["env"]
    b = invoke_ok(lam, second, {"env": names})["env"]
    assert a["AWS_ACCESS_KEY_ID"].startswith("ASIA") and len(a["AWS_ACCESS_KEY_ID"]) == 20
    assert a["AWS_ACCESS_KEY_ID"] != b["AWS_ACCESS_KEY_ID"] and a["AWS_SESSION_TOKEN"] != b["AWS_SESSION_TOKEN"]
    assert a["AWS_ENDPOINT_URL_LAMBDA"] == b["AWS_ENDPOINT_URL_LAMBDA"]
    # The token names the function it was minted for.
    payload = a["AWS_SESSION_TOKEN"].split(".")[0]
    import base64

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["arn"].endswith(f":function:{first}") and claims["exp"] > time.time()


CONTAINER_CREDENTIALS = """
import os, urllib.request, boto3

def handler(event, context):
    from_variables = os.environ["AWS_ACCESS_KEY_ID"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        del os.environ[name]
    credentials = boto3.Session().get_credentials()
    request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
    try:
        urllib.request.urlopen(request, timeout=2)
        without_token = 200
    except urllib.error.HTTPError as e:
        without_token = e.code
    return {"method": credentials.method, "same": credentials.access_key == from_variables,
            "without_token": without_token}
"""


def test_container_credentials_endpoint_serves_the_same_credentials(lam: Any) -> None:
    """SDKs that look for container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI) find the
    function's own, given AWS_CONTAINER_AUTHORIZATION_TOKEN; without the token, nothing."""
    name = create_function(lam, CONTAINER_CREDENTIALS, runtime="python3.12", Timeout=30)
    assert invoke_ok(lam, name) == {"method": "container-role", "same": True, "without_token": 403}


SNAPSTART = """
import os, socket, urllib.request, boto3

lam = boto3.client("lambda")  # made during init, in the template: container credentials

def handler(event, context):
    if event.get("fill"):  # MB into /tmp: a disk of its own, not the copy's memory
        with open("/tmp/fill", "wb") as f:
            for _ in range(event["fill"]):
                f.write(b"x" * (1 << 20))
        os.unlink("/tmp/fill")
        st = os.statvfs("/tmp")
        return {"filled": event["fill"], "tmp_mb": st.f_bavail * st.f_frsize // (1 << 20)}
    page = urllib.request.urlopen(event["url"], timeout=5).read().decode()
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    return {"page": page, "sees_itself": context.function_name in names,
            "key_variable": os.environ.get("AWS_ACCESS_KEY_ID"),
            "credentials": lam._request_signer._credentials.method}
"""


def test_snapstart_copies_have_the_network_fresh_credentials_and_a_tmp_disk(lam: Any) -> None:
    """Copies of a SnapStart template are plugged into the network too, (as on Lambda) get
    their credentials only through the container credentials endpoint, which each copy serves,
    and have a /tmp on disk of their own."""
    name = create_function(lam, SNAPSTART, runtime="python3.12", Timeout=60, MemorySize=128,
                           SnapStart={"ApplyOn": "PublishedVersions"})
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    out = invoke_ok(lam, name, {"url": f"http://{TEST_DOMAIN}/"}, Qualifier=version)
    assert out == {"page": PAGE.decode(), "sees_itself": True, "key_variable": None,
                   "credentials": "container-role"}
    # A 128 MB copy writes 300 MB to its 512 MB /tmp.
    assert invoke_ok(lam, name, {"fill": 300}, Qualifier=version) == {"filled": 300, "tmp_mb": 512}


SQS_SENDER = """
import boto3

def handler(event, context):
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=event["queue"])["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody=event["body"])
    return "sent"
"""


def test_aws_endpoint_url_takes_other_services_calls(tmp_path: Path, internet: Any, dns: Any) -> None:
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _answers(endpoint), timeout=20)
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                           aws_secret_access_key="x")
        queue = sqs.create_queue(QueueName=unique())["QueueUrl"]
        srv = _server(tmp_path, dns, "--aws-endpoint-url", endpoint)
        try:
            lam = srv.client()
            name = create_function(lam, SQS_SENDER, runtime="python3.12", Timeout=30)
            assert invoke_ok(lam, name, {"queue": queue.rsplit("/", 1)[1], "body": "from a function"}) == "sent"
            messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
            assert [m["Body"] for m in messages] == ["from a function"]
        finally:
            srv.stop()
    finally:
        moto.kill()
        moto.wait()


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


# ------------------------------------------------------------------------------ /tmp on disk


TMP_WRITER = """
import errno, os

COLD = os.getpid(), os.urandom(8).hex()

def handler(event, context):
    chunk = b"x" * (1 << 20)
    path = "/tmp/fill"
    written, result = 0, "ok"
    try:
        with open(path, "wb") as f:
            for _ in range(event["mb"]):
                f.write(chunk)
                written += 1
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        result = errno.errorcode.get(e.errno, str(e))
    os.unlink(path)
    return {"result": result, "written_mb": written, "environment": COLD[1]}
"""


def test_tmp_is_storage_not_memory(lam: Any, net_server: Server) -> None:
    assert health(net_server)["tmp"] == "disk"
    name = create_function(lam, TMP_WRITER, runtime="python3.12", MemorySize=128, Timeout=120,
                           EphemeralStorage={"Size": 512})
    first = invoke_ok(lam, name, {"mb": 400})
    assert (first["result"], first["written_mb"]) == ("ok", 400)
    full = invoke_ok(lam, name, {"mb": 600})
    assert full["result"] == "ENOSPC" and 510 <= full["written_mb"] <= 512  # the file's own extents take a few blocks
    assert full["environment"] == first["environment"]  # it survived, warm
    big = create_function(lam, TMP_WRITER, runtime="python3.12", MemorySize=128, Timeout=300,
                          EphemeralStorage={"Size": 4096})
    assert invoke_ok(lam, big, {"mb": 2000})["result"] == "ok"


# ------------------------------------------------------------------------------ nothing left behind


def test_nothing_of_a_killed_server_remains_after_a_restart(tmp_path: Path, dns: Any) -> None:
    """kill -9 leaves the bridge and the tables (the veths and /tmp disks go with the environments);
    the next server to start removes them, and a server that stops removes its own."""
    srv = _server(tmp_path, dns)
    dead = health(srv)["network"]["bridge"][len("lsbr"):]
    lam = srv.client()
    invoke_ok(lam, probe(lam), {"whoami": True})  # an environment with its veth and its /tmp disk
    assert any(link.startswith(f"lsv{dead}") for link in nethosts.leftovers()["links"])
    disks = [loop for loop in nethosts.leftovers()["loops"] if str(tmp_path) in loop]  # in use and made ahead
    assert disks
    srv.kill()
    again = Server(tmp_path / "data", "--resolv-conf", str(tmp_path / "resolv.conf")).start()
    try:
        alive = health(again)["network"]["bridge"][len("lsbr"):]
        # The environments were frozen when their server died: they go once the new server sweeps
        # their cgroups, and their veths and /tmp disks with them.
        assert wait_for(lambda: not _of(dead) and not set(disks) & set(nethosts.leftovers()["loops"]), timeout=30), \
            (_of(dead), nethosts.leftovers()["loops"])
    finally:
        again.stop()
    assert not _of(alive), _of(alive)
    assert not [loop for loop in nethosts.leftovers()["loops"] if str(tmp_path) in loop]


def _of(tag: str) -> list[str]:
    left = nethosts.leftovers()
    return [name for name in left["links"] + left["tables"] if tag in name]
