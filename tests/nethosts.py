"""The network tests' own hosts: "the internet" is a network namespace this test run makes.

`Internet` creates a namespace with a veth to the host, the public test address 198.51.100.10
(TEST-NET-2), and two addresses that stand for places functions must not reach: a private
one (10.199.77.10) and the instance metadata address (169.254.169.254). The host routes
exactly those to the namespace, so nothing a test sends can leave the machine, even if a
rule under test failed. Inside, an HTTP server answers on port 80.

`DnsServer` answers A queries for a test domain from a table, on the address it is given.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from dnslib import QTYPE, RR, A, DNSRecord

PUBLIC = "198.51.100.10"
PRIVATE = "10.199.77.10"
METADATA = "169.254.169.254"
HOST_SIDE = "198.51.100.1"
PAGE = b"hello from the internet\n"

HTTP_SERVER = """
import http.server, sys
page = sys.argv[1].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = page if self.path != '/big' else b'x' * (100 * 1024 * 1024)
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(('0.0.0.0', 80), Handler).serve_forever()
"""


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


class Internet:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.netns = f"lstest-{tag}"
        self.host_if = f"lstih{tag}"
        self.server: subprocess.Popen[bytes] | None = None
        self.routes = [f"{PRIVATE}/32", f"{METADATA}/32"]

    def start(self) -> Internet:
        inside = f"lstii{self.netns[-6:]}"
        sh("ip", "netns", "add", self.netns)
        try:
            sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", inside)
            sh("ip", "link", "set", inside, "netns", self.netns)
            sh("ip", "addr", "add", f"{HOST_SIDE}/24", "dev", self.host_if)
            sh("ip", "link", "set", self.host_if, "up")
            for route in self.routes:
                sh("ip", "route", "add", route, "via", PUBLIC, "dev", self.host_if)
            ns = ("ip", "netns", "exec", self.netns)
            sh(*ns, "ip", "link", "set", "lo", "up")
            sh(*ns, "ip", "addr", "add", f"{PUBLIC}/24", "dev", inside)
            for address in (PRIVATE, METADATA):
                sh(*ns, "ip", "addr", "add", f"{address}/32", "dev", "lo")
            sh(*ns, "ip", "link", "set", inside, "up")
            sh(*ns, "ip", "route", "add", "default", "via", HOST_SIDE)
            self.server = subprocess.Popen([*ns, sys.executable, "-c", HTTP_SERVER, PAGE.decode()])
            self._wait_for_http()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_http(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((PUBLIC, 80), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError("the test host's HTTP server did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        for route in self.routes:
            sh("ip", "route", "del", route, check=False)
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.netns, check=False)


class DnsServer:
    """Answers A queries for the names in `records` (others: NXDOMAIN), over UDP, on `address`:53."""

    def __init__(self, address: str, records: dict[str, str]) -> None:
        self.address = address
        self.records = {name.rstrip(".").lower(): ip for name, ip in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 53))
        self.queries: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            with contextlib.suppress(Exception):
                query = DNSRecord.parse(data)
                name = str(query.q.qname).rstrip(".").lower()
                self.queries.append(name)
                reply = query.reply()
                if name in self.records and query.q.qtype == QTYPE.A:
                    reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(self.records[name]), ttl=60))
                elif name not in self.records:
                    reply.header.rcode = 3  # NXDOMAIN
                self.sock.sendto(reply.pack(), peer)

    def resolv_conf(self, folder: Path) -> Path:
        path = folder / "resolv.conf"
        path.write_text(f"nameserver {self.address}\n")
        return path

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def internet() -> Iterator[Internet]:
    host = Internet().start()
    try:
        yield host
    finally:
        host.stop()


def leftovers() -> dict[str, list[str]]:
    """lambdastack's interfaces, nftables tables and loop devices now on the host."""
    links = [line.split()[1].split("@")[0].rstrip(":") for line in sh("ip", "-o", "link").splitlines()]
    tables = [line for line in sh("nft", "list", "tables").splitlines() if "lambdastack_" in line]
    loops = [line for line in sh("losetup", "-a").splitlines() if "tmp-disks" in line or "(deleted)" in line]
    return {"links": [name for name in links if name.startswith(("lsbr", "lsv"))], "tables": tables, "loops": loops}
