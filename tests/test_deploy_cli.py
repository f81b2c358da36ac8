"""`lambdastack deploy`: publish from a directory or a zip, move the alias by a strategy, show
the progress live, and exit non-zero when the deployment was rolled back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from deploy_helpers import FLAKY, HEALTHY, Traffic, code
from helpers import Server, create_function

LAMBDASTACK = Path(sys.executable).with_name("lambdastack")


def deploy(server: Server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    return subprocess.run([str(LAMBDASTACK), "deploy", *args, "--url", server.url], capture_output=True, text=True,
                          env=env, timeout=120)


def source_dir(tmp_path: Path, template: str, mark: str) -> Path:
    folder = tmp_path / f"src-{mark}"
    folder.mkdir()
    (folder / "app.py").write_text(template.format(mark=mark))
    return folder


def alias_of(lam: Any, name: str) -> tuple[str, dict[str, float]]:
    a = lam.get_alias(FunctionName=name, Name="live")
    return a["FunctionVersion"], (a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def test_deploy_from_a_directory_with_a_canary(server: Server, plain_lam: Any, tmp_path: Path) -> None:
    lam = plain_lam
    name = create_function(lam, files={"app.py": HEALTHY.format(mark="v0")})
    first = deploy(server, tmp_path, name, "--alias", "live", "--dir", str(source_dir(tmp_path, HEALTHY, "v1")))
    assert first.returncode == 0, first.stderr
    assert "published version 1" in first.stdout and "created alias live on version 1" in first.stdout
    assert alias_of(lam, name) == ("1", {})

    folder = source_dir(tmp_path, HEALTHY, "v2")
    with Traffic(server, f"{name}:live") as traffic:
        r = deploy(server, tmp_path, name, "--alias", "live", "--dir", str(folder), "--strategy", "canary",
                   "--percent", "30", "--interval", "2s", "--min-invocations", "5")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "published version 2" in out
    assert "from version 1 to 2, canary 30% for 2 seconds" in out
    bars = [line for line in out.splitlines() if line.startswith("[")]
    assert any(line.startswith("[#######-----------------]  30% on v2 | step 1/2") for line in bars), out
    assert any("healthy" in line and "v2 " in line and "v1 " in line for line in bars), out
    assert bars[-1].startswith("[########################] 100% on v2"), out
    assert out.rstrip().splitlines()[-1] == "Succeeded: alias live points to version 2"
    assert alias_of(lam, name) == ("2", {})
    assert traffic.versions["2"] > 0 and not traffic.errors

    # The same code again: nothing new to publish, nothing to deploy.
    again = deploy(server, tmp_path, name, "--alias", "live", "--dir", str(folder))
    assert again.returncode == 0, again.stderr
    assert "alias live already points to version 2: nothing to deploy" in again.stdout
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]] == [
        "$LATEST", "1", "2"]


def test_a_rolled_back_deploy_exits_non_zero(server: Server, plain_lam: Any, tmp_path: Path) -> None:
    lam = plain_lam
    name = create_function(lam, files={"app.py": HEALTHY.format(mark="v0")})
    lam.publish_version(FunctionName=name)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    package = tmp_path / "flaky.zip"
    package.write_bytes(code(FLAKY, "v2"))
    with Traffic(server, f"{name}:live"):
        r = deploy(server, tmp_path, name, "--alias", "live", "--zip", str(package), "--strategy", "linear",
                   "--percent", "20", "--interval", "1m")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "UNHEALTHY" in r.stdout
    last = r.stdout.rstrip().splitlines()[-1]
    assert last.startswith("RolledBack: error rate of version 2 is "), r.stdout
    assert "rolled back: alias live points to version 1 again" in r.stdout
    assert alias_of(lam, name) == ("1", {})


def test_deploy_errors(server: Server, plain_lam: Any, tmp_path: Path) -> None:
    r = deploy(server, tmp_path, "no-such-function", "--alias", "live", "--version", "1")
    assert r.returncode == 2
    assert "ResourceNotFoundException" in r.stderr
    name = create_function(plain_lam, files={"app.py": HEALTHY.format(mark="v0")})
    plain_lam.publish_version(FunctionName=name)
    plain_lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    r = deploy(server, tmp_path, name, "--alias", "live", "--version", "7")
    assert r.returncode == 2
    assert "ResourceNotFoundException" in r.stderr and f"{name}:7" in r.stderr
    r = deploy(server, tmp_path, name, "--alias", "live", "--version", "1", "--interval", "soon")
    assert r.returncode == 2 and "not a duration" in r.stderr
