"""`serve --auth sigv4`: the APIs answer only requests signed with a key of `lambdastack keys`
(or a function's own credentials), with AWS's error codes otherwise."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from helpers import REGION, Server, create_function, invoke_ok

ACCOUNT = "111111111111"
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def keys(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdastack", "keys", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, check=True, timeout=60)


def new_key(data_dir: Path, name: str = "alice", account: str = ACCOUNT) -> dict[str, str]:
    created: dict[str, str] = json.loads(keys(data_dir, "create", "--account", account, "--name", name,
                                              "--json").stdout)
    return created


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("auth") / "data", "--auth", "sigv4").start()
    yield srv
    srv.stop()


def client(server: Server, key: dict[str, str] | None, service: str = "lambda", **config: Any) -> Any:
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config)
    if key is None:
        return boto3.client(service, endpoint_url=server.url, region_name=REGION,
                            config=cfg.merge(Config(signature_version=UNSIGNED)))
    return boto3.client(service, endpoint_url=server.url, region_name=REGION, config=cfg,
                        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


def refused(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_a_created_key_signs_requests_and_its_account_is_the_callers(signed_server: Server) -> None:
    key = new_key(signed_server.data_dir)
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert key["AccessKeyId"][4:].isalnum() and key["AccessKeyId"].isupper()
    assert key["Account"] == ACCOUNT and len(key["SecretAccessKey"]) == 40
    lam = client(signed_server, key)
    name = create_function(lam, "def handler(event, context):\n    return 1\n")
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert name in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    # Escaped paths, query strings and bodies are signed as botocore signs them.
    assert lam.get_function(FunctionName=f"{name}:$LATEST")["Configuration"]["FunctionName"] == name
    assert len(lam.list_functions(MaxItems=1)["Functions"]) == 1
    assert json.loads(lam.invoke(FunctionName=name, Payload=b'{"a": "b  c"}')["Payload"].read()) == 1
    # A key of another account sees none of it.
    other = client(signed_server, new_key(signed_server.data_dir, "carol", "222222222222"))
    assert name not in [f["FunctionName"] for f in other.list_functions()["Functions"]]
    assert refused(lambda: other.get_function(FunctionName=name))[:2] == (404, "ResourceNotFoundException")
    # Other services' APIs check signatures too (json protocol).
    client(signed_server, key, "logs").describe_log_groups()


def test_the_secret_is_not_stored_in_plain_text(signed_server: Server) -> None:
    key = new_key(signed_server.data_dir)
    for path in signed_server.data_dir.iterdir():
        if path.is_file():
            assert key["SecretAccessKey"].encode() not in path.read_bytes(), path
    assert (signed_server.data_dir / "access-keys.key").stat().st_mode & 0o777 == 0o600
    listed = json.loads(keys(signed_server.data_dir, "list", "--json").stdout)["AccessKeys"]
    assert {"AccessKeyId": key["AccessKeyId"], "Account": ACCOUNT, "Status": "Active"}.items() <= \
        next(k for k in listed if k["AccessKeyId"] == key["AccessKeyId"]).items()
    assert key["SecretAccessKey"] not in json.dumps(listed)


def test_unsigned_requests_are_refused_but_health_answers(signed_server: Server) -> None:
    assert refused(client(signed_server, None).list_functions) == \
        (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    assert refused(client(signed_server, None, "logs").describe_log_groups)[:2] == \
        (403, "MissingAuthenticationTokenException")
    assert requests.get(signed_server.url + "/_lambdastack/deployments", timeout=10).status_code == 403
    health = requests.get(signed_server.url + "/_lambdastack/health", timeout=10)
    assert health.status_code == 200 and health.json()["auth"] == "sigv4"


def test_unknown_key_and_wrong_secret_are_refused(signed_server: Server) -> None:
    unknown = {"AccessKeyId": "AKIAAAAAAAAAAAAAAAAA", "SecretAccessKey": "x" * 40}
    assert refused(client(signed_server, unknown).list_functions) == \
        (403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    key = dict(new_key(signed_server.data_dir), SecretAccessKey="y" * 40)
    assert refused(client(signed_server, key).list_functions) == (403, "InvalidSignatureException", MISMATCH)


def test_a_signature_older_than_15_minutes_has_expired(signed_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key(signed_server.data_dir)
    lam = client(signed_server, key)
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=16)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)  # a client with a slow clock
    status, code, message = refused(lam.list_functions)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith(f"Signature expired: {skewed:%Y%m%dT%H%M%SZ} is now earlier than ")
    assert message.endswith(" - 15 min.)")
    monkeypatch.undo()
    lam.list_functions()


def test_a_disabled_key_stops_working_at_once(signed_server: Server) -> None:
    key = new_key(signed_server.data_dir)
    lam = client(signed_server, key)
    lam.list_functions()
    keys(signed_server.data_dir, "disable", key["AccessKeyId"])
    assert refused(lam.list_functions)[:2] == (403, "UnrecognizedClientException")
    keys(signed_server.data_dir, "enable", key["AccessKeyId"])
    lam.list_functions()
    keys(signed_server.data_dir, "delete", key["AccessKeyId"])
    assert refused(lam.list_functions)[:2] == (403, "UnrecognizedClientException")


def test_the_aws_cli_signs_with_a_created_key(signed_server: Server) -> None:
    key = new_key(signed_server.data_dir)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
               AWS_DEFAULT_REGION=REGION)
    env.pop("AWS_SESSION_TOKEN", None)
    aws = str(Path(sys.executable).parent / "aws")
    ok = subprocess.run([aws, "lambda", "list-functions", "--endpoint-url", signed_server.url],
                        env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "Functions" in json.loads(ok.stdout)
    env["AWS_SECRET_ACCESS_KEY"] = "z" * 40
    bad = subprocess.run([aws, "lambda", "list-functions", "--endpoint-url", signed_server.url],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 255
    assert "(InvalidSignatureException)" in bad.stderr


LISTER = """
import boto3

def handler(event, context):
    lam = boto3.client("lambda")
    return [f["FunctionName"] for f in lam.list_functions()["Functions"]]
"""


def test_a_function_calls_the_api_with_its_own_credentials(signed_server: Server) -> None:
    lam = client(signed_server, new_key(signed_server.data_dir))
    name = create_function(lam, LISTER, runtime="python3.12", Timeout=30)
    assert name in invoke_ok(lam, name)


def test_function_urls_keep_their_own_auth_type(signed_server: Server) -> None:
    lam = client(signed_server, new_key(signed_server.data_dir))
    name = create_function(lam, "def handler(event, context):\n    return 'open'\n")
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    lam.add_permission(FunctionName=name, StatementId="public", Action="lambda:InvokeFunctionUrl",
                       Principal="*", FunctionUrlAuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    host = url.split("//", 1)[1].split("/", 1)[0]
    answer = requests.get(f"{signed_server.url}/", headers={"Host": host}, timeout=30)
    assert (answer.status_code, answer.text) == (200, '"open"')
    # An AWS_IAM URL accepts a signature of a created key (SigV4 for the lambda service).
    iam_name = create_function(lam, "def handler(event, context):\n    return 'signed'\n")
    iam_host = lam.create_function_url_config(FunctionName=iam_name, AuthType="AWS_IAM")["FunctionUrl"] \
        .split("//", 1)[1].split("/", 1)[0]
    assert requests.get(f"{signed_server.url}/", headers={"Host": iam_host}, timeout=30).status_code == 403
    key = new_key(signed_server.data_dir, "bob")
    request = AWSRequest(method="GET", url=f"http://{iam_host}/", headers={"Host": iam_host})
    SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "lambda", REGION).add_auth(request)
    signed = requests.get(f"{signed_server.url}/", headers=dict(request.headers.items()), timeout=30)
    assert (signed.status_code, signed.text) == (200, '"signed"')


def test_the_cli_signs_its_own_requests_with_the_users_key(signed_server: Server, tmp_path: Path) -> None:
    key = new_key(signed_server.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    command = [sys.executable, "-m", "lambdastack", "cost", "--url", signed_server.url, "--json"]
    unsigned = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert unsigned.returncode != 0 and "Missing Authentication Token" in unsigned.stderr
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    signed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert signed.returncode == 0, signed.stderr
    assert isinstance(json.loads(signed.stdout), dict)


def test_presigned_requests_are_checked_too(signed_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    lam = client(signed_server, new_key(signed_server.data_dir))
    url = lam.generate_presigned_url("list_functions", Params={"MaxItems": 5}, ExpiresIn=60)
    ok = requests.get(url, timeout=30)
    assert ok.status_code == 200 and "Functions" in ok.json()
    tampered = requests.get(url.replace("MaxItems=5", "MaxItems=6"), timeout=30)
    assert (tampered.status_code, tampered.headers["x-amzn-errortype"], tampered.json()["message"]) == \
        (403, "InvalidSignatureException", MISMATCH)
    earlier = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=120)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: earlier)
    old = requests.get(lam.generate_presigned_url("list_functions", ExpiresIn=60), timeout=30)
    assert (old.status_code, old.headers["x-amzn-errortype"]) == (403, "InvalidSignatureException")
    assert old.json()["message"].startswith(f"Signature expired: {earlier:%Y%m%dT%H%M%SZ} is now earlier than ")
