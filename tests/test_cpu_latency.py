"""The CPU wake-up latency request (PM QoS): held while invocations flow, given back when they stop."""

from __future__ import annotations

import json
import os
import struct
import urllib.request
from typing import Any

import pytest
from helpers import Server, create_function, invoke_ok, wait_for

DEVICE = "/dev/cpu_dma_latency"
NOOP = "def handler(event, context):\n    return {}\n"

pytestmark = pytest.mark.skipif(
    not os.access(DEVICE, os.W_OK), reason=f"{DEVICE} cannot be opened for writing here (root on Linux)"
)


def health(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/_lambdastack/health", timeout=10) as r:
        return dict(json.load(r))


def holds_device(pid: int) -> bool:
    """Whether the process has the PM QoS device open (its request lasts while it does)."""
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            if os.readlink(os.path.join(folder, fd)) == DEVICE:
                return True
        except OSError:
            pass
    return False


def current_target_us() -> int:
    """The latency the kernel honours now: the lowest of every process's request."""
    fd = os.open(DEVICE, os.O_RDONLY)
    try:
        return int(struct.unpack("i", os.read(fd, 4))[0])
    finally:
        os.close(fd)


def test_held_while_invocations_flow_and_released_after(private_server: Any) -> None:
    server = private_server("--cpu-latency-us", "0")
    lam = server.client()
    assert not holds_device(server.pid), "an idle server asks nothing"
    assert health(server)["cpu_latency"] == {"target_us": 0, "available": True, "held": False}
    name = create_function(lam, NOOP)
    invoke_ok(lam, name)
    assert holds_device(server.pid)
    assert health(server)["cpu_latency"]["held"] is True
    assert current_target_us() == 0  # the kernel takes the lowest request: ours
    # Two seconds without an invocation: the request is given back.
    assert wait_for(lambda: not holds_device(server.pid), timeout=10)
    assert health(server)["cpu_latency"]["held"] is False
    invoke_ok(lam, name)
    assert holds_device(server.pid)


@pytest.mark.parametrize("args", [("--cpu-latency-us", "off"), ()], ids=["off", "by-default"])
def test_off_asks_nothing(private_server: Any, args: tuple[str, ...]) -> None:
    server = private_server(*args)
    lam = server.client()
    invoke_ok(lam, create_function(lam, NOOP))
    assert not holds_device(server.pid)
    assert health(server)["cpu_latency"] == {"target_us": None, "available": False, "held": False}


def test_a_bad_value_is_refused(tmp_path: Any) -> None:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "lambdastack", "serve", "--data-dir", str(tmp_path),
                        "--cpu-latency-us", "-5"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--cpu-latency-us" in r.stderr and "0 or more microseconds, or off" in r.stderr
