"""Shared test helpers: a real lambdastack server in a subprocess, clients, zips."""

from __future__ import annotations

import base64
import io
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
# The runtime of the interpreter running the tests (and the server): always offered.
DEFAULT_RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`lambdastack serve` as a subprocess, exactly as a user or an outside tool starts it."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        python: str | None = None,
        wrapper: list[str] | None = None,
    ):
        """`user`: run the server as that (unprivileged) user; its data dir must be writable by it.
        `python`: the interpreter to run it with (default: the one running the tests).
        `wrapper`: a command prefix the server runs under (before `user`'s)."""
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.extra = list(extra)
        self.env = env
        self.user = user
        self.python = python or sys.executable
        self.wrapper = wrapper or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"server-{self.data_dir.name}-{self.port}.log"

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "lambdastack", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.extra]
        if self.user is not None:
            cmd = [*as_user(self.user), *cmd]
        return [*self.wrapper, *cmd]

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server was not started"
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            os.chown(self.data_dir, account.pw_uid, account.pw_gid)
            env.update(HOME=str(self.data_dir.parent), USER=self.user, LOGNAME=self.user)
        env.update(self.env or {})
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                cwd=self.data_dir.parent if self.user is not None else None,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/_lambdastack/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self, service: str = "lambda", region: str = REGION, **config: Any) -> Any:
        return client_for(self.url, service, region, **config)


def client_for(url: str, service: str = "lambda", region: str = REGION, **config: Any) -> Any:
    # No retries: tests see exactly what one request got (botocore's max_attempts counts retries).
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120, connect_timeout=10, **config)
    return boto3.client(
        service, endpoint_url=url, region_name=region,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", config=cfg,
    )


def unique(prefix: str = "fn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_zip(files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = (modes or {}).get(name, 0o755 if name.endswith("bootstrap") else 0o644)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, content)
    return buf.getvalue()


def python_zip(source: str, module: str = "app") -> bytes:
    return make_zip({f"{module}.py": source})


def as_user(user: str) -> list[str]:
    """A command prefix that runs what follows as `user`, with that user's groups only."""
    account = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]


# ---------------------------------------------------------------------------------- functions


def create_function(
    lam: Any,
    source: str | None = None,
    *,
    files: Mapping[str, str | bytes] | None = None,
    handler: str = "app.handler",
    runtime: str = DEFAULT_RUNTIME,
    name: str | None = None,
    **config: Any,
) -> str:
    """Create a zip function from inline source (module `app`) or a dict of files; wait until Active."""
    name = name or unique()
    code = make_zip(dict(files)) if files is not None else python_zip(source or ECHO)
    lam.create_function(FunctionName=name, Runtime=runtime, Role=ROLE, Handler=handler, Code={"ZipFile": code},
                        **config)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


@dataclass
class Invoked:
    """What a caller of Invoke sees."""

    status: int
    payload: bytes
    function_error: str | None
    executed_version: str | None
    request_id: str
    log: str  # the decoded `X-Amz-Log-Result`, "" without LogType=Tail

    @property
    def result(self) -> Any:
        return json.loads(self.payload)


def invoke(lam: Any, name: str, event: Any = None, *, raw: bytes | None = None, **params: Any) -> Invoked:
    """Invoke synchronously with `event` as JSON (or `raw` bytes as the body) and collect the answer."""
    if raw is not None:
        params["Payload"] = raw
    elif event is not None:
        params["Payload"] = json.dumps(event).encode()
    r = lam.invoke(FunctionName=name, **params)
    log = base64.b64decode(r["LogResult"]).decode("utf-8", "replace") if "LogResult" in r else ""
    return Invoked(
        status=r["StatusCode"],
        payload=r["Payload"].read(),
        function_error=r.get("FunctionError"),
        executed_version=r.get("ExecutedVersion"),
        request_id=r["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid", ""),
        log=log,
    )


def invoke_ok(lam: Any, name: str, event: Any = None, **params: Any) -> Any:
    """Invoke and return the function's result, failing the test on a function error."""
    r = invoke(lam, name, event, **params)
    assert r.status == 200 and r.function_error is None, (r.function_error, r.payload[:2000], r.log)
    return r.result


ECHO = "def handler(event, context):\n    return event\n"


def stored_log(server: Server, lam: Any, name: str) -> dict[str, list[str]]:
    """The server's stored log of a function: log stream name -> its lines, oldest first."""
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    account, region = arn.split(":")[4], arn.split(":")[3]
    folder = server.data_dir / "logs" / account / region / name
    streams: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.jsonl")) if folder.exists() else ():
        stream = str(path.relative_to(folder))[: -len(".jsonl")]
        streams[stream] = [json.loads(line)["message"] for line in path.read_text().splitlines() if line.strip()]
    return streams


def logged_words(server: Server, lam: Any, name: str, prefix: str = "GOT ") -> dict[str, int]:
    """How many times each word was logged by a function on lines that start with `prefix`."""
    counts: dict[str, int] = {}
    for stream in stored_log(server, lam, name).values():
        for line in stream:
            if line.startswith(prefix):
                for word in line[len(prefix):].split():
                    counts[word] = counts.get(word, 0) + 1
    return counts


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or the timeout passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@contextmanager
def cpu_load(processes: int | None = None, limit_s: float = 120.0) -> Iterator[None]:
    """Keep every core busy while the block runs (races that a quiet machine hides show under load).

    Each busy process ends by itself after `limit_s` even if the test is killed before it can stop them.
    """
    count = processes or os.cpu_count() or 2
    code = f"import time\nend = time.monotonic() + {limit_s}\nwhile time.monotonic() < end: pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
