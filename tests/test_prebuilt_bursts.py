"""A burst of new functions: every first invocation succeeds, and the pre-built pool learns
the burst's size, so that the next burst of new functions finds its environments built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from helpers import Server, create_function, invoke, wait_for

BURST = 8
FLOOR = 2  # `serve --prebuilt`'s default


def pool_figures(server: Server) -> dict[str, int]:
    """The pre-built pool of the tests' Python runtime, as /_lambdastack/health reports it."""
    pools = requests.get(server.url + "/_lambdastack/health", timeout=10).json()["prebuilt"]
    assert len(pools) == 1, pools
    return dict(next(iter(pools.values())))


def burst(lam: Any, names: list[str]) -> None:
    """First invocations of new functions, back to back: each a cold start that succeeds."""
    for name in names:
        r = invoke(lam, name, {"name": name}, LogType="Tail")
        assert r.status == 200 and r.function_error is None, r.payload
        assert r.result == {"name": name}
        assert "Init Duration" in r.log  # a new environment, not a warm one


def test_a_burst_of_new_functions_teaches_the_pool_its_size(private_server: Callable[..., Server]) -> None:
    server = private_server()
    if "namespaces" not in requests.get(
            server.url + "/_lambdastack/health", timeout=10).json()["isolation"]:
        pytest.skip("environments are built ahead of demand with namespaces isolation only")
    lam = server.client()
    first = create_function(lam)
    burst(lam, [first])  # starts the runtime's zygote, which then builds its pool
    assert wait_for(lambda: pool_figures(server)["ready"] >= FLOOR, timeout=60)
    quiet = pool_figures(server)
    assert quiet["target"] == FLOOR

    names = [create_function(lam) for _ in range(BURST)]
    burst(lam, names)
    learned = pool_figures(server)
    assert learned["target"] >= BURST
    assert learned["served"] + learned["built_on_demand"] == quiet["served"] + quiet["built_on_demand"] + BURST

    # The pool fills up to the burst's size in the background, and the next burst is all served from it.
    assert wait_for(lambda: pool_figures(server)["ready"] >= BURST, timeout=120), pool_figures(server)
    names = [create_function(lam) for _ in range(BURST)]
    before = pool_figures(server)
    burst(lam, names)
    after = pool_figures(server)
    assert after["served"] - before["served"] == BURST
    assert after["built_on_demand"] == before["built_on_demand"]

