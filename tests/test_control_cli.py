"""The AWS CLI (from PyPI) against lambdastack: only --endpoint-url differs from AWS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import ECHO, ROLE, Server, python_zip, unique

AWS = Path(sys.executable).with_name("aws")


def aws(
    server: Server, tmp_path: Path, *args: str, region: str = "us-east-1"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [str(AWS), "--endpoint-url", server.url, "--output", "json", "lambda", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def test_get_missing_function_prints_lambdas_error(server: Server, tmp_path: Path) -> None:
    r = aws(server, tmp_path, "get-function", "--function-name", "nope")
    assert r.returncode != 0
    assert r.stderr.strip().endswith(
        "An error occurred (ResourceNotFoundException) when calling the GetFunction operation: "
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"
    )


def test_create_list_update_delete_with_the_cli(server: Server, tmp_path: Path) -> None:
    package = tmp_path / "hello.zip"
    package.write_bytes(python_zip(ECHO))
    name = unique("cli")
    created = ok(
        aws(
            server,
            tmp_path,
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.11",
            "--handler",
            "app.handler",
            "--role",
            ROLE,
            "--zip-file",
            f"fileb://{package}",
            "--environment",
            "Variables={GREETING=hello}",
            "--tags",
            "team=cli",
        )
    )
    assert created["FunctionName"] == name
    assert created["Runtime"] == "python3.11"
    assert created["Environment"] == {"Variables": {"GREETING": "hello"}}
    listed = ok(aws(server, tmp_path, "list-functions"))
    assert name in [f["FunctionName"] for f in listed["Functions"]]

    bad = aws(server, tmp_path, "update-function-configuration", "--function-name", name, "--timeout", "1200")
    assert bad.returncode != 0
    assert bad.stderr.strip().startswith(
        "An error occurred (ValidationException) when calling the UpdateFunctionConfiguration operation: "
        "1 validation error detected: Value '1200' at 'timeout' failed to satisfy constraint: "
        "Member must have value less than or equal to 900"
    )

    assert ok(aws(server, tmp_path, "delete-function", "--function-name", name)) == {"StatusCode": 204}
    lam = server.client()
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)
