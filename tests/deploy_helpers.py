"""What the deployment tests share: functions with versions, live traffic, the deployments API."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import requests
from helpers import Server, create_function, make_zip

HEALTHY = '''
VERSION_MARK = "{mark}"

def handler(event, context):
    return {{"mark": VERSION_MARK}}
'''

# Raises on exactly 3 of every 10 calls an environment serves.
FLAKY = '''
VERSION_MARK = "{mark}"
calls = 0

def handler(event, context):
    global calls
    calls += 1
    if calls % 10 in (1, 4, 7):
        raise RuntimeError("flaky on purpose")
    return {{"mark": VERSION_MARK}}
'''


def code(template: str, mark: str) -> bytes:
    return make_zip({"app.py": template.format(mark=mark)})


def function_with_alias(lam: Any, alias: str = "live") -> str:
    """A function whose version 1 is healthy, with `alias` on version 1."""
    name = create_function(lam, files={"app.py": HEALTHY.format(mark="v1")})
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name=alias, FunctionVersion="1")
    return name


def publish(lam: Any, name: str, template: str, mark: str) -> str:
    version = lam.update_function_code(FunctionName=name, ZipFile=code(template, mark), Publish=True)["Version"]
    lam.get_waiter("published_version_active").wait(FunctionName=name, Qualifier=version,
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return str(version)


class Traffic:
    """Invokes `target` continuously from a background thread while the block runs."""

    def __init__(self, server: Server, target: str) -> None:
        self.server = server
        self.target = target
        self.versions: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = self.server.client()
        while not self._stop.is_set():
            r = client.invoke(FunctionName=self.target, Payload=b"{}")
            r["Payload"].read()
            version = r["ExecutedVersion"]
            self.versions[version] += 1
            if r.get("FunctionError"):
                self.errors[version] += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)


def deployments_url(server: Server) -> str:
    return server.url + "/_lambdastack/deployments"


def start_deployment(server: Server, **request: Any) -> requests.Response:
    return requests.post(deployments_url(server), json=request, timeout=30)


def get_deployment(server: Server, deployment_id: str) -> dict[str, Any]:
    r = requests.get(f"{deployments_url(server)}/{deployment_id}", timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_finished(server: Server, deployment_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        document = get_deployment(server, deployment_id)
        if document["Status"] != "InProgress" or time.monotonic() > deadline:
            return document
        time.sleep(0.1)


def progress_stream(server: Server, deployment_id: str) -> list[dict[str, Any]]:
    """Every document the live progress stream sends, until the deployment ends."""
    documents = []
    with requests.get(f"{deployments_url(server)}/{deployment_id}/progress", stream=True, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                documents.append(json.loads(line[len(b"data: "):]))
    return documents
