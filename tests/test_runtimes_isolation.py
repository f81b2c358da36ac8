"""Node.js and custom runtimes at the weaker isolation levels: in a user namespace, and as plain
processes (where an environment has no root of its own, so the runtime is started from the
host paths behind /var/task, /var/lang/bin/node and /var/runtime)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
import runtimes_functions as fn
from helpers import create_function, invoke


@pytest.mark.parametrize("level", ["userns", "process"])
def test_node_and_custom_runtimes(private_server: Any, level: str) -> None:
    server = private_server("--isolation", level)
    health = requests.get(server.url + "/_lambdastack/health", timeout=5).json()
    assert health["isolation"].startswith(level)
    lam = server.client()
    node = next((r for r in health["runtimes"] if re.fullmatch(r"nodejs\d+\.x", r)), None)
    kinds = [("provided.al2023", {"bootstrap": fn.SHELL}, "function.handler")]
    if node is not None:
        kinds.append((node, {"index.mjs": fn.NODE_ESM}, "index.handler"))
    for runtime, files, handler in kinds:
        name = create_function(lam, files=files, handler=handler, runtime=runtime)
        event = {"op": "echo", "level": level}
        r = invoke(lam, name, event)
        assert r.function_error is None, r.payload
        assert r.result == event
        r = invoke(lam, name, {"op": "fail"})
        assert r.function_error == "Unhandled"
        assert r.result["errorMessage"] == "boom"
