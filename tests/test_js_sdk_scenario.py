"""The AWS SDK for JavaScript v3 (@aws-sdk/client-lambda) against lambdastack.

A second real client besides botocore: it finds the error code in `x-amzn-ErrorType` and the
body in its own way, decodes the event stream with its own code and has its own waiters.
tests/js_sdk/scenario.mjs is one user's session (create, update, publish, alias, invoke in
every way, stream, list, errors, delete) printing a JSON line per step; this test installs
the SDK from the npm registry once (into .cache/, as tests/js_sdk/package-lock.json pins it), runs the
script against the shared server and names every step that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import DEFAULT_RUNTIME, REGION, ROLE, Server, make_zip, python_zip, unique
from streaming_functions import NODE_STREAMING

HERE = Path(__file__).parent / "js_sdk"
CACHE = Path(os.environ.get("LAMBDASTACK_TEST_CACHE", Path(__file__).parent.parent / ".cache"))

V1 = "def handler(event, context):\n    return {'version': 1}\n"
V2 = """import os


def handler(event, context):
    who = (event or {}).get('who', 'nobody')
    print('greeting', who)
    return {'message': os.environ['GREETING'] + ' ' + who, 'version': 2,
            'function_version': context.function_version}
"""
FAILING = "def handler(event, context):\n    return {}['missing']\n"


def unavailable(reason: str) -> None:
    """No SDK to run: a failure (CI has Node.js, npm and the registry), or a skip where
    LAMBDASTACK_TEST_OFFLINE=1 says the machine has no registry. Once installed, the SDK in
    .cache/ needs no network, and npm prefers its own cache to the registry."""
    if os.environ.get("LAMBDASTACK_TEST_OFFLINE") == "1":
        pytest.skip(reason)
    pytest.fail(reason + "\n(LAMBDASTACK_TEST_OFFLINE=1 skips this test on a machine without the npm registry)",
                pytrace=False)


def install_sdk() -> Path:
    """The folder holding node_modules/@aws-sdk/client-lambda, exactly as package-lock.json
    has it (`npm ci`): installed once per version of the two files, into a fresh folder
    renamed into place when complete."""
    manifests = {name: (HERE / name).read_bytes() for name in ("package.json", "package-lock.json")}
    digest = hashlib.sha256(b"".join(manifests.values())).hexdigest()[:12]
    target = CACHE / f"js-sdk-{digest}"
    if (target / "node_modules" / "@aws-sdk" / "client-lambda" / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        unavailable("Node.js and npm are needed for the JavaScript SDK scenario")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="js-sdk-", dir=CACHE))
    try:
        for name, data in manifests.items():
            (work / name).write_bytes(data)
        done = subprocess.run(
            [str(npm), "ci", "--prefix", str(work), "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            unavailable(f"npm ci of tests/js_sdk/package-lock.json failed:\n{done.stdout}\n{done.stderr}")
        try:
            work.rename(target)
        except OSError:  # another run installed it meanwhile
            if not target.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    return install_sdk()


def node_runtime(server: Server) -> str | None:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    return next((r for r in runtimes if re.fullmatch(r"nodejs\d+\.x", r)), None)


def run_scenario(server: Server, sdk_dir: Path, tmp_path: Path) -> list[dict[str, Any]]:
    zips = {
        "v1": python_zip(V1),
        "v2": python_zip(V2),
        "failing": python_zip(FAILING),
        "streaming": make_zip({"index.mjs": NODE_STREAMING}),
    }
    paths = {}
    for key, data in zips.items():
        paths[key] = str(tmp_path / f"{key}.zip")
        Path(paths[key]).write_bytes(data)
    config = {
        "endpoint": server.url, "region": REGION, "role": ROLE, "sdkDir": str(sdk_dir),
        "runtime": DEFAULT_RUNTIME, "nodeRuntime": node_runtime(server),
        "functionName": unique("jssdk"), "zips": paths,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-creds")}
    done = subprocess.run(["node", str(HERE / "scenario.mjs"), str(tmp_path / "config.json")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=240)
    steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert steps, f"the scenario printed no step (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert done.returncode == (1 if any(not s["ok"] for s in steps) else 0), done.stderr
    return steps


def test_js_sdk_scenario(server: Server, sdk_dir: Path, tmp_path: Path) -> None:
    steps = run_scenario(server, sdk_dir, tmp_path)
    failed = [f"{s['step']}: {s['detail']}" for s in steps if not s["ok"]]
    if failed:
        pytest.fail(f"{len(failed)} of {len(steps)} steps failed:\n" + "\n".join(failed), pytrace=False)
    assert len(steps) == len(set(s["step"] for s in steps)) == 40, [s["step"] for s in steps]
