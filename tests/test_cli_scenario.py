"""The AWS CLI v1 (from PyPI) through whole scenarios, as a user types them with `--output json`.

tests/test_control_cli.py checks single commands; here each test is one user's session of
many steps (deploy and release a function; its settings and permissions; the mistakes a
user makes). A step that fails does not stop the scenario: the test fails at its end and
names every step that failed, with what the CLI printed. The v1 CLI takes `--payload` as
the raw JSON text (it has no `--cli-binary-format`) and has no event-stream commands.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import DEFAULT_RUNTIME, REGION, ROLE, Server, python_zip, unique
from test_control_cli import aws

ACCOUNT = "000000000000"

V1 = "def handler(event, context):\n    return {'version': 1}\n"
V2 = """import os


def handler(event, context):
    who = event.get('who', 'nobody')
    print('greeting', who)
    return {'message': os.environ['GREETING'] + ' ' + who, 'function_version': context.function_version}
"""
FAILING = "def handler(event, context):\n    raise ValueError('no such thing')\n"


class Scenario:
    """Runs steps in order, records which failed and why, and reports them all at the end."""

    def __init__(self, server: Server, home: Path) -> None:
        self.server = server
        self.home = home
        self.results: list[tuple[str, bool, str]] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return aws(self.server, self.home, *args)

    def ok(self, *args: str) -> Any:
        """The JSON the CLI printed for a command that must succeed (None when it printed nothing)."""
        r = self.cli(*args)
        assert r.returncode == 0, f"exit {r.returncode}: {r.stderr.strip()}"
        return json.loads(r.stdout) if r.stdout.strip() else None

    def fails(self, code: str, operation: str, message: str | None, *args: str) -> str:
        """A command that must fail with Lambda's error `code`, printed as the CLI prints it."""
        r = self.cli(*args)
        assert r.returncode in (254, 255), f"exit {r.returncode} (stdout {r.stdout!r}, stderr {r.stderr!r})"
        line = r.stderr.strip()
        prefix = f"An error occurred ({code}) when calling the {operation} operation: "
        assert line.startswith(prefix), line
        if message is not None:
            assert line == prefix + message, line
        return line

    def step(self, name: str) -> Callable[[Callable[[], Any]], None]:
        def run(body: Callable[[], Any]) -> None:
            try:
                detail = body()
            except Exception as e:
                self.results.append((name, False, f"{type(e).__name__}: {e}"))
            else:
                self.results.append((name, True, "" if detail is None else str(detail)))
        return run

    def passed(self) -> int:
        failed = [f"{name}: {detail}" for name, ok, detail in self.results if not ok]
        if failed:
            pytest.fail(f"{len(failed)} of {len(self.results)} steps failed:\n" + "\n".join(failed), pytrace=False)
        return len(self.results)


def fn_arn(name: str, qualifier: str | None = None) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}" + (f":{qualifier}" if qualifier else "")


def write_zip(folder: Path, name: str, source: str) -> str:
    path = folder / f"{name}.zip"
    path.write_bytes(python_zip(source))
    return f"fileb://{path}"


def test_deploy_release_and_invoke(server: Server, tmp_path: Path) -> None:
    """Create from a zip, update configuration and code, publish, alias, invoke every way, list, delete."""
    s = Scenario(server, tmp_path)
    name = unique("cli")
    out = tmp_path / "out.json"
    state: dict[str, Any] = {}

    @s.step("create-function --zip-file fileb://")
    def _() -> Any:
        created = s.ok("create-function", "--function-name", name, "--runtime", DEFAULT_RUNTIME,
                       "--handler", "app.handler", "--role", ROLE, "--zip-file", write_zip(tmp_path, "v1", V1),
                       "--description", "the CLI scenario", "--timeout", "10", "--memory-size", "256",
                       "--environment", "Variables={GREETING=hello}", "--tags", "team=cli")
        assert created["FunctionArn"] == fn_arn(name) and created["Version"] == "$LATEST", created
        assert created["State"] in ("Pending", "Active") and created["MemorySize"] == 256, created
        return created["State"]

    @s.step("wait function-active-v2")
    def _() -> Any:
        return s.ok("wait", "function-active-v2", "--function-name", name)

    @s.step("get-function")
    def _() -> Any:
        got = s.ok("get-function", "--function-name", name)
        c = got["Configuration"]
        assert (c["State"], c["LastUpdateStatus"], c["Timeout"]) == ("Active", "Successful", 10), c
        assert c["Environment"] == {"Variables": {"GREETING": "hello"}} and got["Tags"] == {"team": "cli"}, got
        assert got["Code"]["RepositoryType"] == "S3" and got["Code"]["Location"].startswith(server.url), got["Code"]
        state["sha"] = c["CodeSha256"]
        return c["CodeSha256"]

    @s.step("update-function-configuration")
    def _() -> Any:
        updated = s.ok("update-function-configuration", "--function-name", name, "--memory-size", "512",
                       "--timeout", "20", "--environment", "Variables={GREETING=bonjour}")
        assert (updated["MemorySize"], updated["Timeout"]) == (512, 20), updated
        assert updated["LastUpdateStatus"] in ("InProgress", "Successful"), updated
        return updated["LastUpdateStatus"]

    @s.step("wait function-updated-v2 (configuration)")
    def _() -> Any:
        s.ok("wait", "function-updated-v2", "--function-name", name)
        c = s.ok("get-function-configuration", "--function-name", name)
        assert c["Environment"] == {"Variables": {"GREETING": "bonjour"}} and c["LastUpdateStatus"] == "Successful", c

    @s.step("update-function-code --zip-file fileb://")
    def _() -> Any:
        updated = s.ok("update-function-code", "--function-name", name, "--zip-file", write_zip(tmp_path, "v2", V2))
        assert updated["CodeSha256"] != state.get("sha"), updated
        state["sha"] = updated["CodeSha256"]
        return updated["CodeSha256"]

    @s.step("wait function-updated-v2 (code)")
    def _() -> Any:
        s.ok("wait", "function-updated-v2", "--function-name", name)

    @s.step("publish-version")
    def _() -> Any:
        published = s.ok("publish-version", "--function-name", name, "--description", "first",
                         "--code-sha-256", state["sha"])
        assert (published["Version"], published["FunctionArn"]) == ("1", fn_arn(name, "1")), published
        s.ok("wait", "published-version-active", "--function-name", name, "--qualifier", "1")
        return published["Version"]

    @s.step("create-alias")
    def _() -> Any:
        alias = s.ok("create-alias", "--function-name", name, "--name", "live", "--function-version", "1")
        assert (alias["Name"], alias["FunctionVersion"], alias["AliasArn"]) == ("live", "1", fn_arn(name, "live"))
        return alias["AliasArn"]

    @s.step("invoke --qualifier live --payload JSON --log-type Tail")
    def _() -> Any:
        printed = s.ok("invoke", "--function-name", name, "--qualifier", "live", "--payload", '{"who": "cli"}',
                       "--log-type", "Tail", str(out))
        assert (printed["StatusCode"], printed["ExecutedVersion"]) == (200, "1"), printed
        assert "FunctionError" not in printed, printed
        result = json.loads(out.read_text())
        assert result == {"message": "bonjour cli", "function_version": "1"}, result
        log = base64.b64decode(printed["LogResult"]).decode()
        assert "START RequestId: " in log and "Version: 1" in log and "greeting cli" in log, log
        assert "END RequestId: " in log and "REPORT RequestId: " in log and "Memory Size: 512 MB" in log, log
        return result

    @s.step("invoke --payload file://")
    def _() -> Any:
        event = tmp_path / "event.json"
        event.write_text('{"who": "file"}')
        printed = s.ok("invoke", "--function-name", name, "--payload", f"file://{event}", str(out))
        assert (printed["StatusCode"], printed["ExecutedVersion"]) == (200, "$LATEST"), printed
        assert "LogResult" not in printed, printed
        assert json.loads(out.read_text())["message"] == "bonjour file"

    @s.step("invoke --invocation-type Event")
    def _() -> Any:
        out.write_text("left over")
        printed = s.ok("invoke", "--function-name", name, "--invocation-type", "Event",
                       "--payload", '{"who": "async"}', str(out))
        assert printed == {"StatusCode": 202}, printed
        assert out.read_text() == "", out.read_text()
        return printed

    @s.step("invoke --invocation-type DryRun")
    def _() -> Any:
        printed = s.ok("invoke", "--function-name", name, "--invocation-type", "DryRun", str(out))
        assert printed["StatusCode"] == 204, printed

    @s.step("invoke a failing function (FunctionError Unhandled)")
    def _() -> Any:
        failing = name + "-fails"
        s.ok("create-function", "--function-name", failing, "--runtime", DEFAULT_RUNTIME, "--handler",
             "app.handler", "--role", ROLE, "--zip-file", write_zip(tmp_path, "failing", FAILING))
        s.ok("wait", "function-active-v2", "--function-name", failing)
        printed = s.ok("invoke", "--function-name", failing, str(out))
        assert (printed["StatusCode"], printed.get("FunctionError")) == (200, "Unhandled"), printed
        error = json.loads(out.read_text())
        assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no such thing"), error
        s.ok("delete-function", "--function-name", failing)
        return error["errorType"]

    @s.step("list-versions-by-function")
    def _() -> Any:
        versions = [v["Version"] for v in s.ok("list-versions-by-function", "--function-name", name)["Versions"]]
        assert versions == ["$LATEST", "1"], versions

    @s.step("list-aliases")
    def _() -> Any:
        aliases = s.ok("list-aliases", "--function-name", name)["Aliases"]
        assert [(a["Name"], a["FunctionVersion"]) for a in aliases] == [("live", "1")], aliases

    @s.step("list-functions --page-size 1 (the CLI follows NextMarker)")
    def _() -> Any:
        names = [f["FunctionName"] for f in s.ok("list-functions", "--page-size", "1")["Functions"]]
        assert name in names and len(names) == len(set(names)), names
        return f"{len(names)} functions"

    @s.step("delete-alias")
    def _() -> Any:
        assert s.ok("delete-alias", "--function-name", name, "--name", "live") is None

    @s.step("delete-function")
    def _() -> Any:
        deleted = s.ok("delete-function", "--function-name", name)
        assert deleted == {"StatusCode": 204}, deleted

    @s.step("get-function after delete-function")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "GetFunction", f"Function not found: {fn_arn(name)}",
                       "get-function", "--function-name", name)

    assert s.passed() == 20


def test_settings_and_permissions(server: Server, tmp_path: Path) -> None:
    """Tags, reserved concurrency, resource-based policy and event invoke configuration."""
    s = Scenario(server, tmp_path)
    name = unique("cliset")
    arn = fn_arn(name)

    @s.step("create-function")
    def _() -> Any:
        s.ok("create-function", "--function-name", name, "--runtime", DEFAULT_RUNTIME, "--handler", "app.handler",
             "--role", ROLE, "--zip-file", write_zip(tmp_path, "v1", V1))
        s.ok("wait", "function-active-v2", "--function-name", name)

    @s.step("tag-resource")
    def _() -> Any:
        assert s.ok("tag-resource", "--resource", arn, "--tags", "team=cli,stage=test") is None

    @s.step("list-tags")
    def _() -> Any:
        tags = s.ok("list-tags", "--resource", arn)
        assert tags == {"Tags": {"team": "cli", "stage": "test"}}, tags

    @s.step("untag-resource")
    def _() -> Any:
        s.ok("untag-resource", "--resource", arn, "--tag-keys", "stage")
        tags = s.ok("list-tags", "--resource", arn)
        assert tags == {"Tags": {"team": "cli"}}, tags

    @s.step("put-function-concurrency")
    def _() -> Any:
        put = s.ok("put-function-concurrency", "--function-name", name, "--reserved-concurrent-executions", "5")
        assert put == {"ReservedConcurrentExecutions": 5}, put

    @s.step("get-function-concurrency")
    def _() -> Any:
        got = s.ok("get-function-concurrency", "--function-name", name)
        assert got == {"ReservedConcurrentExecutions": 5}, got
        assert s.ok("get-function", "--function-name", name)["Concurrency"] == got

    @s.step("delete-function-concurrency")
    def _() -> Any:
        assert s.ok("delete-function-concurrency", "--function-name", name) is None
        assert s.ok("get-function-concurrency", "--function-name", name) is None

    @s.step("add-permission")
    def _() -> Any:
        added = s.ok("add-permission", "--function-name", name, "--statement-id", "s3-invoke",
                     "--action", "lambda:InvokeFunction", "--principal", "s3.amazonaws.com",
                     "--source-arn", "arn:aws:s3:::photos", "--source-account", "111122223333")
        statement = json.loads(added["Statement"])
        assert statement["Sid"] == "s3-invoke" and statement["Resource"] == arn, statement
        return statement

    @s.step("get-policy")
    def _() -> Any:
        got = s.ok("get-policy", "--function-name", name)
        policy = json.loads(got["Policy"])
        assert policy["Version"] == "2012-10-17" and isinstance(got["RevisionId"], str), got
        [statement] = policy["Statement"]
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Action"] == "lambda:InvokeFunction" and statement["Resource"] == arn, statement
        assert statement["Condition"] == {
            "StringEquals": {"AWS:SourceAccount": "111122223333"},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::photos"},
        }, statement["Condition"]

    @s.step("add-permission with a statement id in use")
    def _() -> Any:
        return s.fails("ResourceConflictException", "AddPermission",
                       "The statement id (s3-invoke) provided already exists. Please provide a new statement id, "
                       "or remove the existing statement.",
                       "add-permission", "--function-name", name, "--statement-id", "s3-invoke",
                       "--action", "lambda:InvokeFunction", "--principal", "sns.amazonaws.com")

    @s.step("remove-permission")
    def _() -> Any:
        assert s.ok("remove-permission", "--function-name", name, "--statement-id", "s3-invoke") is None
        return s.fails("ResourceNotFoundException", "GetPolicy", "The resource you requested does not exist.",
                       "get-policy", "--function-name", name)

    @s.step("put-function-event-invoke-config")
    def _() -> Any:
        put = s.ok("put-function-event-invoke-config", "--function-name", name,
                   "--maximum-retry-attempts", "1", "--maximum-event-age-in-seconds", "600")
        assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 600), put
        assert put["FunctionArn"] == fn_arn(name, "$LATEST"), put

    @s.step("get-function-event-invoke-config")
    def _() -> Any:
        got = s.ok("get-function-event-invoke-config", "--function-name", name)
        assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (1, 600), got

    @s.step("get-account-settings")
    def _() -> Any:
        settings = s.ok("get-account-settings")
        assert settings["AccountLimit"]["ConcurrentExecutions"] > 0, settings
        assert settings["AccountUsage"]["FunctionCount"] >= 1, settings

    @s.step("delete-function")
    def _() -> Any:
        deleted = s.ok("delete-function", "--function-name", name)
        assert deleted == {"StatusCode": 204}, deleted

    assert s.passed() == 15


def test_mistakes_get_lambdas_errors(server: Server, tmp_path: Path) -> None:
    """What the CLI prints for the mistakes a user makes: the exit status and Lambda's error line."""
    s = Scenario(server, tmp_path)
    name = unique("clierr")
    missing = unique("missing")
    v1 = write_zip(tmp_path, "v1", V1)

    @s.step("create-function")
    def _() -> Any:
        s.ok("create-function", "--function-name", name, "--runtime", DEFAULT_RUNTIME, "--handler", "app.handler",
             "--role", ROLE, "--zip-file", v1)
        s.ok("wait", "function-active-v2", "--function-name", name)
        s.ok("publish-version", "--function-name", name)
        s.ok("create-alias", "--function-name", name, "--name", "live", "--function-version", "1")

    @s.step("invoke a missing function (ResourceNotFoundException)")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "Invoke", f"Function not found: {fn_arn(missing, '$LATEST')}",
                       "invoke", "--function-name", missing, str(tmp_path / "out.json"))

    @s.step("invoke a missing alias (ResourceNotFoundException)")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "Invoke", f"Function not found: {fn_arn(name, 'nosuch')}",
                       "invoke", "--function-name", name, "--qualifier", "nosuch", str(tmp_path / "out.json"))

    @s.step("create-function of a name in use (ResourceConflictException)")
    def _() -> Any:
        return s.fails("ResourceConflictException", "CreateFunction", f"Function already exist: {name}",
                       "create-function", "--function-name", name, "--runtime", DEFAULT_RUNTIME,
                       "--handler", "app.handler", "--role", ROLE, "--zip-file", v1)

    @s.step("create-function with a deprecated runtime (InvalidParameterValueException)")
    def _() -> Any:
        line = s.fails("InvalidParameterValueException", "CreateFunction", None,
                       "create-function", "--function-name", unique("old"), "--runtime", "python2.7",
                       "--handler", "app.handler", "--role", ROLE, "--zip-file", v1)
        assert "The runtime parameter of python2.7 is no longer supported for creating or updating AWS Lambda " \
               "functions." in line, line
        return line

    @s.step("create-function with a runtime no one has (InvalidParameterValueException, as AWS answers it)")
    def _() -> Any:
        line = s.fails("InvalidParameterValueException", "CreateFunction", None,
                       "create-function", "--function-name", unique("cobol"), "--runtime", "cobol85",
                       "--handler", "app.handler", "--role", ROLE, "--zip-file", v1)
        assert "Value cobol85 at 'runtime' failed to satisfy constraint: " \
               "Member must satisfy enum value set: [" in line and line.endswith("] or be a valid ARN"), line
        return line

    @s.step("invoke with a payload that is not JSON (InvalidRequestContentException)")
    def _() -> Any:
        line = s.fails("InvalidRequestContentException", "Invoke", None,
                       "invoke", "--function-name", name, "--payload", "not json", str(tmp_path / "out.json"))
        assert "Could not parse request body into json" in line, line
        return line

    @s.step("create-alias that exists (ResourceConflictException)")
    def _() -> Any:
        return s.fails("ResourceConflictException", "CreateAlias", f"Alias already exists: {fn_arn(name, 'live')}",
                       "create-alias", "--function-name", name, "--name", "live", "--function-version", "1")

    @s.step("publish-version with another code's sha256 (InvalidParameterValueException)")
    def _() -> Any:
        sha = s.ok("get-function-configuration", "--function-name", name)["CodeSha256"]
        return s.fails("InvalidParameterValueException", "PublishVersion",
                       f"CodeSHA256 (not-the-sha) is different from current CodeSHA256 in $LATEST ({sha}). "
                       "Please try again with the CodeSHA256 in $LATEST.",
                       "publish-version", "--function-name", name, "--code-sha-256", "not-the-sha")

    @s.step("publish-version with a stale revision id (PreconditionFailedException)")
    def _() -> Any:
        return s.fails("PreconditionFailedException", "PublishVersion",
                       "The Revision Id provided does not match the latest Revision Id. "
                       "Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
                       "publish-version", "--function-name", name, "--revision-id", "not-the-revision")

    @s.step("delete-function of a version an alias uses (ResourceConflictException)")
    def _() -> Any:
        return s.fails("ResourceConflictException", "DeleteFunction",
                       "Unable to delete version because the following aliases reference it: [live]",
                       "delete-function", "--function-name", name, "--qualifier", "1")

    @s.step("get-policy of a function without one (ResourceNotFoundException)")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "GetPolicy", "The resource you requested does not exist.",
                       "get-policy", "--function-name", name)

    @s.step("remove-permission of a missing statement (ResourceNotFoundException)")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "RemovePermission", None,
                       "remove-permission", "--function-name", name, "--statement-id", "nope")

    @s.step("put-function-concurrency above the account's limit (InvalidParameterValueException)")
    def _() -> Any:
        return s.fails("InvalidParameterValueException", "PutFunctionConcurrency", None,
                       "put-function-concurrency", "--function-name", name,
                       "--reserved-concurrent-executions", "100000")

    @s.step("update-function-code of a missing function (ResourceNotFoundException)")
    def _() -> Any:
        return s.fails("ResourceNotFoundException", "UpdateFunctionCode", f"Function not found: {fn_arn(missing)}",
                       "update-function-code", "--function-name", missing, "--zip-file", v1)

    @s.step("delete-function")
    def _() -> Any:
        deleted = s.ok("delete-function", "--function-name", name)
        assert deleted == {"StatusCode": 204}, deleted
        return s.fails("ResourceNotFoundException", "DeleteFunction", f"Function not found: {fn_arn(name)}",
                       "delete-function", "--function-name", name)

    assert s.passed() == 16
