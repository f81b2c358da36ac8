"""Shared pieces of the benchmarks: a server to measure, functions to deploy, statistics."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

RESULTS = Path(__file__).parent / "results"
NOOP = "def handler(event, context):\n    return event\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def zip_of(files: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class BenchServer:
    """A lambdastack server started exactly as a user starts it; stopped even if we are interrupted."""

    def __init__(self, *extra: str, port: int | None = None) -> None:
        # Make SIGTERM (e.g. from `timeout`) unwind like Ctrl-C, so `close()` in a finally runs.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.tmp = tempfile.TemporaryDirectory(prefix="lambdastack-bench-")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lambdastack", "serve", "--port", str(self.port), "--data-dir",
             os.path.join(self.tmp.name, "data"), "--log-level", "warning", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/_lambdastack/health")
                self.health = json.loads(conn.getresponse().read())
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def client(self, service: str = "lambda") -> Any:
        return boto3.client(
            service, endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="x", config=Config(retries={"total_max_attempts": 1}, read_timeout=300),
        )

    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.tmp.cleanup()


class Invoker:
    """A keep-alive HTTP client posting raw Invoke requests (no SDK overhead in the figures)."""

    def __init__(self, port: int, function: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.path = f"/2015-03-31/functions/{function}/invocations"

    def __call__(self, body: bytes = b"{}") -> bytes:
        self.conn.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200 or response.getheader("X-Amz-Function-Error"):
            raise RuntimeError(f"invoke failed: {response.status} {data[:200]!r}")
        return data


def write_result(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{name}-latest.json").write_text(json.dumps(document, indent=2) + "\n")
    return path


def distribution_files(*names: str) -> dict[str, bytes]:
    """The installed files of these distributions and of everything they require (for this
    interpreter), as a function's zip carries them: packages at its root, with their metadata.

    A function of the same Python version as the tests can use them as they are, compiled
    extensions included.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    files: dict[str, bytes] = {}
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        for relative in dist.files or ():
            path = Path(str(dist.locate_file(relative)))
            if path.is_file() and "__pycache__" not in relative.parts and not str(relative).startswith(".."):
                files[str(relative)] = path.read_bytes()
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return files
