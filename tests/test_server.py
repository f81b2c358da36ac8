"""The stable interface: `lambdastack serve` flags and the health endpoint."""

from __future__ import annotations

import resource
import signal

import requests
from helpers import Server


def test_health_reports_version(server: Server) -> None:
    r = requests.get(server.url + "/_lambdastack/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["version"]
    assert body["status"] == "ok"


def test_unknown_route_is_a_clear_404(server: Server) -> None:
    r = requests.get(server.url + "/no/such/route", timeout=5)
    assert r.status_code == 404
    assert r.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "GET /no/such/route" in r.json()["message"]


def test_sigint_and_sigterm_stop_cleanly(private_server) -> None:  # type: ignore[no-untyped-def]
    for sig in (signal.SIGINT, signal.SIGTERM):
        srv = private_server()
        assert srv.proc is not None
        srv.proc.send_signal(sig)
        assert srv.proc.wait(15) == 0


def test_the_server_raises_its_open_file_limit_to_the_hard_limit(private_server) -> None:  # type: ignore[no-untyped-def]
    """Thousands of environments need more descriptors than a usual soft limit of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, expected), hard))
    try:
        srv = private_server()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{srv.pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    assert int(line.split()[3]) == expected
