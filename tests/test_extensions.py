"""External extensions (/opt/extensions, from a layer) and the Extensions API lifecycle."""

from __future__ import annotations

from typing import Any

from helpers import Server, create_function, invoke, make_zip, stored_log, wait_for

# An extension as Lambda users write them: register, then loop on event/next.
COUNTER = r'''#!/usr/bin/python3
import json, os, sys, time, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2020-01-01/extension"
registration = urllib.request.Request(
    api + "/register", data=json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
    headers={"Lambda-Extension-Name": "counter"}, method="POST")
with urllib.request.urlopen(registration) as r:
    ident = r.headers["Lambda-Extension-Identifier"]
    print("counter registered", json.dumps(json.loads(r.read()), sort_keys=True), flush=True)
count = 0
while True:
    request = urllib.request.Request(api + "/event/next", headers={"Lambda-Extension-Identifier": ident})
    with urllib.request.urlopen(request) as r:
        event = json.loads(r.read())
    if event["eventType"] == "INVOKE":
        count += 1
        print("counter INVOKE", event["requestId"], event["invokedFunctionArn"], flush=True)
        time.sleep(0.3)  # work after the function answered: the environment must not be frozen yet
        print("counter done", event["requestId"], flush=True)
    else:
        print("counter SHUTDOWN", event["shutdownReason"], "count=%d" % count, flush=True)
        sys.exit(0)
'''


def extension_layer(lam: Any) -> str:
    content = make_zip({"extensions/counter": COUNTER}, modes={"extensions/counter": 0o755})
    layer = lam.publish_layer_version(LayerName="counter-extension", Content={"ZipFile": content})
    return str(layer["LayerVersionArn"])


def log_lines(server: Server, lam: Any, name: str) -> list[str]:
    return [line for lines in stored_log(server, lam, name).values() for line in lines]


def test_extension_sees_every_invocation_and_finishes_its_work(server: Server, plain_lam: Any) -> None:
    name = create_function(plain_lam, "def handler(event, context):\n    return 'ok'\n",
                           Layers=[extension_layer(plain_lam)], MemorySize=512)
    ids = [invoke(plain_lam, name).request_id for _ in range(3)]
    lines = wait_for(lambda: (found := log_lines(server, plain_lam, name))
                     and sum("counter done" in line for line in found) == 3 and found, timeout=15)
    registered = next(line for line in lines if line.startswith("counter registered"))
    assert f'"functionName": "{name}"' in registered
    assert '"functionVersion": "$LATEST"' in registered and '"handler": "app.handler"' in registered
    for request_id in ids:
        assert any(line.startswith(f"counter INVOKE {request_id} arn:aws:lambda:") for line in lines)
        # The post-invocation work completed: the environment was not frozen under it.
        assert f"counter done {request_id}" in lines


def test_idle_reaping_delivers_shutdown(private_server: Any) -> None:
    server: Server = private_server("--idle-timeout", "2")
    lam = server.client()
    name = create_function(lam, "def handler(event, context):\n    return 'ok'\n",
                           Layers=[extension_layer(lam)], MemorySize=512)
    for _ in range(3):
        assert invoke(lam, name).result == "ok"
    shutdown = wait_for(lambda: [line for line in log_lines(server, lam, name) if "SHUTDOWN" in line], timeout=20)
    assert shutdown == ["counter SHUTDOWN spindown count=3"]
