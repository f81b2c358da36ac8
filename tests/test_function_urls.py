"""Requests to Function URLs, served by the same server: Lambda's payload format 2.0 in, the
function's answer out as Lambda reads it, the resource policy Lambda requires, CORS, and
Lambda's answers for errors. Clients: requests (with a Host header) and curl (by name)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import uuid
from typing import Any
from unittest import mock

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from helpers import Server, client_for, create_function

ECHO = '''
import base64, json

def handler(event, context):
    path = event["rawPath"]
    if path == "/boom":
        raise ValueError("boom")
    if path == "/plain":
        return "just a string"
    if path == "/garbage":
        return {"statusCode": "not a status"}
    if path == "/binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True,
                "body": base64.b64encode(bytes(range(256))).decode()}
    if event["requestContext"]["http"]["method"] == "OPTIONS":
        raise RuntimeError("a preflight must not reach the function")
    return {"statusCode": 201, "headers": {"X-Custom": "yes"}, "cookies": ["a=1; Path=/", "b=2"],
            "body": json.dumps({"event": event, "version": context.function_version})}
'''


def public_url(lam: Any, name: str, qualifier: str | None = None, **config: Any) -> str:
    extra = {"Qualifier": qualifier} if qualifier else {}
    url: str = lam.create_function_url_config(FunctionName=name, AuthType="NONE", **extra, **config)["FunctionUrl"]
    for sid, action, condition in (("url", "lambda:InvokeFunctionUrl", {"FunctionUrlAuthType": "NONE"}),
                                   ("invoke", "lambda:InvokeFunction", {"InvokedViaFunctionUrl": True})):
        lam.add_permission(FunctionName=name, StatementId=sid, Action=action, Principal="*", **extra, **condition)
    return url


def call(server: Server, url: str, path: str = "/", method: str = "GET", **kwargs: Any) -> requests.Response:
    host = url.split("//", 1)[1].split(":", 1)[0]
    headers = {"Host": host, **kwargs.pop("headers", {})}
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def test_a_url_answers_only_once_the_policy_allows_it(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
    refused = call(server, url)
    assert (refused.status_code, refused.json()) == (403, {"Message": "Forbidden"})
    assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException" and refused.headers["x-amzn-RequestId"]
    # lambda:InvokeFunctionUrl alone is not enough (URLs since October 2025): lambda:InvokeFunction too.
    lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl", Principal="*",
                       FunctionUrlAuthType="NONE")
    assert call(server, url).status_code == 403
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    assert call(server, url).status_code == 201
    lam.remove_permission(FunctionName=name, StatementId="invoke")
    assert call(server, url).status_code == 403
    # An AWS_IAM URL needs a SigV4 signature, whatever the policy says.
    lam.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert call(server, url).status_code == 403
    # Back to NONE it answers again; deleted, its host names no URL.
    lam.update_function_url_config(FunctionName=name, AuthType="NONE")
    lam.add_permission(FunctionName=name, StatementId="invoke", Action="lambda:InvokeFunction", Principal="*",
                       InvokedViaFunctionUrl=True)
    assert call(server, url).status_code == 201
    lam.delete_function_url_config(FunctionName=name)
    gone = call(server, url)
    assert (gone.status_code, gone.text) == (403, '{"Message":null}')


def test_unknown_url(server: Server) -> None:
    host = "0123456789abcdefghijklmnopqrstuv.lambda-url.us-east-1.localhost"
    r = requests.get(server.url + "/", headers={"Host": host}, timeout=10)
    assert (r.status_code, r.text) == (403, '{"Message":null}')
    assert r.headers["content-type"] == "application/json" and r.headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_the_request_becomes_payload_2_0(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    url = public_url(lam, name)
    url_id = url.split("//", 1)[1].split(".", 1)[0]
    r = call(server, url, "/items/42", "POST", params=[("a", "1"), ("a", "2"), ("empty", "")],
             headers={"Cookie": "c1=v1; c2=v2", "Content-Type": "application/json", "X-Twice": "one",
                      "User-Agent": "tests/1.0"},
             data=b'{"k": 1}')
    assert r.status_code == 201
    event = r.json()["event"]
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "$default", "/items/42")
    assert event["rawQueryString"] == "a=1&a=2&empty="
    assert event["queryStringParameters"] == {"a": "1,2", "empty": ""}
    assert event["cookies"] == ["c1=v1", "c2=v2"] and "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json" and event["headers"]["x-twice"] == "one"
    assert all(key == key.lower() for key in event["headers"])
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": 1}', False)
    context = event["requestContext"]
    assert (context["apiId"], context["domainPrefix"]) == (url_id, url_id)
    assert context["domainName"].startswith(f"{url_id}.lambda-url.us-east-1.")
    assert context["http"] == {"method": "POST", "path": "/items/42", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "tests/1.0"}
    assert (context["routeKey"], context["stage"], context["accountId"]) == ("$default", "$default", "anonymous")
    assert context["requestId"] == r.headers["x-amzn-RequestId"]
    assert isinstance(context["timeEpoch"], int) and context["time"].endswith(" +0000")
    # A binary body arrives base64-encoded.
    blob = bytes(range(256))
    event = call(server, url, "/upload", "PUT", data=blob,
                 headers={"Content-Type": "application/octet-stream"}).json()["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == blob


def test_the_answer_is_read_as_lambda_reads_it(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    url = public_url(lam, name)
    r = call(server, url, "/x")
    assert (r.status_code, r.headers["x-custom"], r.headers["content-type"]) == (201, "yes", "application/json")
    assert r.raw.headers.getlist("set-cookie") == ["a=1; Path=/", "b=2"]
    plain = call(server, url, "/plain")
    assert (plain.status_code, plain.text, plain.headers["content-type"]) == (200, '"just a string"',
                                                                               "application/json")
    binary = call(server, url, "/binary")
    assert (binary.status_code, binary.content, binary.headers["content-type"]) == (200, bytes(range(256)),
                                                                                     "image/png")
    for path in ("/boom", "/garbage"):
        failed = call(server, url, path)
        assert (failed.status_code, failed.text) == (502, "Internal Server Error"), path
        assert failed.headers["x-amzn-RequestId"]


def test_an_alias_url_runs_the_alias_version(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    url = public_url(lam, name, "live")
    assert call(server, url).json()["version"] == version


def test_cors_preflight_is_answered_without_the_function(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    cors = {"AllowOrigins": ["https://app.example.test"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["x-token"], "ExposeHeaders": ["x-custom"], "MaxAge": 600, "AllowCredentials": True}
    url = public_url(lam, name, Cors=cors)
    origin = {"Origin": "https://app.example.test"}
    preflight = call(server, url, "/x", "OPTIONS", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.test"
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"
    assert preflight.headers["access-control-allow-headers"] == "x-token"
    assert preflight.headers["access-control-max-age"] == "600"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    actual = call(server, url, "/x", headers=origin)
    assert actual.status_code == 201 and actual.headers["access-control-expose-headers"] == "x-custom"
    other = call(server, url, "/x", headers={"Origin": "https://elsewhere.test"})
    assert other.status_code == 201 and "access-control-allow-origin" not in other.headers


def test_a_body_over_6_mb_is_refused(lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    url = public_url(lam, name)
    r = call(server, url, "/x", "POST", data=b"x" * (7 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert r.status_code == 413 and r.headers["x-amzn-ErrorType"] == "RequestTooLargeException"
    assert "Request must be smaller than 6291456 bytes" in r.json()["Message"]


def test_curl_by_the_urls_own_name(lam: Any, server: Server) -> None:
    """*.localhost reaches loopback (curl resolves it so itself): the URL works as written."""
    name = create_function(lam, ECHO)
    url = public_url(lam, name)
    mark = uuid.uuid4().hex
    out = subprocess.run(["curl", "-s", "-i", "--max-time", "30", f"{url}hello?mark={mark}"],
                         capture_output=True, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201"), out[:500]
    assert json.loads(body)["event"]["queryStringParameters"] == {"mark": mark}


NODE_URL_STREAMING = r'''
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const query = event.queryStringParameters ?? {};
  if (query.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 202, headers: { 'content-type': 'text/plain', 'x-custom': 'streamed' }, cookies: ['s=1'],
    });
  } else {
    responseStream.setContentType('text/csv');
  }
  for (let i = 0; i < Number(query.n ?? 3); i++) {
    if (i) await new Promise((resolve) => setTimeout(resolve, Number(query.pause ?? 0) * 1000));
    responseStream.write(`chunk ${i}\n`);
  }
  if (query.fail) throw new Error('broken mid-stream');
  responseStream.end();
});
'''


def _node_runtime(server: Server) -> str | None:
    runtimes = requests.get(server.url + "/_lambdastack/health", timeout=5).json()["runtimes"]
    return next((r for r in runtimes if r.startswith("nodejs")), None)


def test_a_response_stream_url_streams(lam: Any, server: Server) -> None:
    import time

    import pytest

    runtime = _node_runtime(server)
    if runtime is None:
        pytest.skip("no Node.js on this host")
    name = create_function(lam, files={"index.mjs": NODE_URL_STREAMING}, handler="index.handler", runtime=runtime,
                           Timeout=30)
    url = public_url(lam, name, InvokeMode="RESPONSE_STREAM")
    # The prelude's status, headers and cookies; the body chunk by chunk, as the function writes it.
    with call(server, url, "/", params={"http": "1", "n": "3", "pause": "0.4"}, stream=True) as r:
        assert r.status_code == 202 and r.headers["x-custom"] == "streamed"
        assert r.headers["content-type"] == "text/plain" and r.raw.headers.getlist("set-cookie") == ["s=1"]
        assert "content-length" not in r.headers
        arrivals = []
        started = time.monotonic()
        for line in r.iter_lines():
            arrivals.append((line.decode(), time.monotonic() - started))
    assert [text for text, _ in arrivals] == ["chunk 0", "chunk 1", "chunk 2"]
    assert arrivals[0][1] < 0.3 and arrivals[2][1] > 0.7, arrivals  # not gathered first
    # Without a prelude: 200 with the function's content type.
    plain = call(server, url, "/", params={"n": "2"})
    assert (plain.status_code, plain.headers["content-type"], plain.text) == (200, "text/csv", "chunk 0\nchunk 1\n")
    # Failing before the first byte: 502; after it, the body just ends.
    assert call(server, url, "/", params={"n": "0", "fail": "1"}).status_code == 502
    broken = call(server, url, "/", params={"n": "1", "fail": "1"})
    assert (broken.status_code, broken.text) == (200, "chunk 0\n")
    # A function that does not stream is answered as a buffered URL would answer it.
    python = create_function(lam, ECHO)
    buffered = public_url(lam, python, InvokeMode="RESPONSE_STREAM")
    assert call(server, buffered, "/plain").text == '"just a string"'
    assert call(server, buffered, "/x").status_code == 201


CORS_PAGE = """<!doctype html>
<title>waiting</title>
<script>
fetch(%(url)s, {method: "POST", headers: {"Content-Type": "application/json", "X-Token": "t"}, body: "{}"})
  .then((r) => r.text().then((text) => { document.title = "status " + r.status + " " + r.headers.get("x-custom"); }))
  .catch((e) => { document.title = "failed " + e; });
</script>
"""


def test_a_page_on_another_origin_calls_the_url_from_chromium(lam: Any, server: Server, tmp_path: Any) -> None:
    """A real browser: the page on http://127.0.0.1:<port> calls the URL on its own origin,
    which needs the preflight (a JSON POST with a custom header) and the CORS answer."""
    import functools
    import http.server
    import shutil
    import threading

    import pytest

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no Chromium on this host (scripts/test installs it)")
    name = create_function(lam, ECHO)
    page_server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)))
    origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    url = public_url(lam, name, Cors={"AllowOrigins": [origin], "AllowMethods": ["POST"],
                                      "AllowHeaders": ["content-type", "x-token"], "ExposeHeaders": ["x-custom"]})
    (tmp_path / "page.html").write_text(CORS_PAGE % {"url": json.dumps(url + "from-the-browser")})
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    try:
        def title(page_url: str) -> str:
            out = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page_url],
                capture_output=True, text=True, timeout=120,
            ).stdout
            return out.split("<title>", 1)[1].split("</title>", 1)[0] if "<title>" in out else out[:500]

        assert title(f"{origin}/page.html") == "status 201 yes"
        # The same page from an origin the URL does not allow: the browser refuses the answer.
        lam.update_function_url_config(FunctionName=name, Cors={"AllowOrigins": ["https://elsewhere.test"]})
        assert title(f"{origin}/page.html").startswith("failed")
    finally:
        page_server.shutdown()


CREDENTIALS = """
import os

def handler(event, context):
    return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}
"""


def signed(server: Server, url: str, path: str, method: str = "GET", body: bytes = b"", *, key: str, secret: str,
           token: str | None = None, service: str = "lambda", when: dt.datetime | None = None,
           tamper: bytes | None = None) -> requests.Response:
    """A request signed as botocore signs (SigV4, the URL's host), sent to the server by Host."""
    host = url.split("//", 1)[1].rstrip("/")
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body,
                         headers={"Content-Type": "application/json"} if body else {})
    signer = SigV4Auth(Credentials(key, secret, token), service, "us-east-1")
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):  # signed at another time
            signer.add_auth(request)
    headers = {"Host": host, **request.headers}  # the host it was signed for, as a client by name sends it
    return requests.request(method, server.url + path, headers=headers, data=tamper if tamper is not None else body,
                            timeout=30)


def test_aws_iam_urls_need_a_valid_signature(lam: Any, private_server: Any) -> None:
    server = private_server("--access-key", "AKIDLAMBDASTACK01:s3cr3t/key")
    lam = client_for(server.url)
    name = create_function(lam, ECHO)
    url = lam.create_function_url_config(FunctionName=name, AuthType="AWS_IAM")["FunctionUrl"]
    assert call(server, url, "/x").status_code == 403  # not signed at all

    ok = signed(server, url, "/items?b=2&a=1", "POST", b'{"k": 1}', key="AKIDLAMBDASTACK01", secret="s3cr3t/key")
    assert ok.status_code == 201, ok.text
    event = ok.json()["event"]
    assert (event["rawQueryString"], event["body"]) == ("b=2&a=1", '{"k": 1}')
    context = event["requestContext"]
    assert context["accountId"] == "000000000000"
    assert context["authorizer"]["iam"] == {
        "accessKey": "AKIDLAMBDASTACK01", "accountId": "000000000000", "callerId": "AKIDLAMBDASTACK01",
        "cognitoIdentity": None, "principalOrgId": None, "userArn": "arn:aws:iam::000000000000:user/AKIDLAMBDASTACK01",
        "userId": "AKIDLAMBDASTACK01"}

    refused = {
        "wrong secret": signed(server, url, "/", key="AKIDLAMBDASTACK01", secret="guess"),
        "unknown key": signed(server, url, "/", key="AKIDSOMEONEELSE", secret="s3cr3t/key"),
        "another service": signed(server, url, "/", key="AKIDLAMBDASTACK01", secret="s3cr3t/key",
                                  service="execute-api"),
        "body changed": signed(server, url, "/", "POST", b'{"k": 1}', key="AKIDLAMBDASTACK01",
                               secret="s3cr3t/key", tamper=b'{"k": 2}'),
        "signed 20 minutes ago": signed(server, url, "/", key="AKIDLAMBDASTACK01", secret="s3cr3t/key",
                                        when=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)),
    }
    for case, response in refused.items():
        assert (response.status_code, response.json()) == (403, {"Message": "Forbidden"}), case

    # A function's own execution-role credentials are accepted too, as its principal.
    helper = create_function(lam, CREDENTIALS)
    creds = json.loads(lam.invoke(FunctionName=helper)["Payload"].read())
    by_role = signed(server, url, "/", key=creds["AWS_ACCESS_KEY_ID"], secret=creds["AWS_SECRET_ACCESS_KEY"],
                     token=creds["AWS_SESSION_TOKEN"])
    assert by_role.status_code == 201, by_role.text
    iam = by_role.json()["event"]["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == creds["AWS_ACCESS_KEY_ID"]
    assert iam["userArn"] == f"arn:aws:sts::000000000000:assumed-role/lambda-role/{helper}"
    forged = signed(server, url, "/", key=creds["AWS_ACCESS_KEY_ID"], secret=creds["AWS_SECRET_ACCESS_KEY"],
                    token=creds["AWS_SESSION_TOKEN"][:-2] + "xx")
    assert forged.status_code == 403
