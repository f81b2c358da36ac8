"""Requests to HTTP APIs, served by the same server by Host (`<api-id>.execute-api.localhost`):
API Gateway's stage and route selection, the payload 1.0 and 2.0 events, the answers read back,
the resource policy API Gateway needs, CORS, and API Gateway's answers for errors.
Clients: requests (with a Host header), httpx and curl (by name)."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import httpx
import pytest
import requests
from helpers import Server, client_for, create_function, unique

ECHO = '''
import base64, json, time

def handler(event, context):
    path = event.get("rawPath") or event.get("path")
    if path.endswith("/boom"):
        raise ValueError("boom")
    if path.endswith("/slow"):
        time.sleep(2)
    if path.endswith("/garbage"):
        return {"statusCode": "not a status"}
    if path.endswith("/plain"):
        return {"plain": True}
    if path.endswith("/object-body"):
        return {"statusCode": 200, "body": {"not": "a string"}}
    if path.endswith("/binary"):
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "isBase64Encoded": True,
                "body": base64.b64encode(bytes(range(256))).decode()}
    if path.endswith("/bad-base64"):
        return {"statusCode": 200, "isBase64Encoded": True, "body": "abc"}
    if path.endswith("/lengthy"):
        return {"statusCode": 200, "headers": {"Content-Length": "2", "Connection": "close"}, "body": "hello"}
    if path.endswith("/cookies"):
        if event["version"] == "1.0":
            return {"statusCode": 200, "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": ""}
        return {"statusCode": 200, "cookies": ["a=1", "b=2"], "body": ""}
    if event["requestContext"].get("http", {}).get("method") == "OPTIONS" or event.get("httpMethod") == "OPTIONS":
        raise RuntimeError("a preflight must not reach the function")
    return {"statusCode": 200, "headers": {"X-Version": event["version"]}, "body": json.dumps(event)}
'''


@pytest.fixture(scope="module")
def gw(server: Server) -> Any:
    return client_for(server.url, "apigatewayv2")


@pytest.fixture(scope="module")
def echo(lam: Any) -> tuple[str, str]:
    name = create_function(lam, ECHO, Timeout=10)
    return name, lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def make_api(gw: Any, lam: Any, function: tuple[str, str], routes: list[str], *, version: str = "2.0",
             permit: bool = True, stages: tuple[str, ...] = ("$default",), timeout_ms: int = 30000,
             **api: Any) -> str:
    name, arn = function
    api_id: str = gw.create_api(Name=unique("api"), ProtocolType="HTTP", **api)["ApiId"]
    integration = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=arn,
                                        PayloadFormatVersion=version, TimeoutInMillis=timeout_ms)["IntegrationId"]
    for key in routes:
        gw.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration}")
    for stage in stages:
        gw.create_stage(ApiId=api_id, StageName=stage, AutoDeploy=True,
                        StageVariables={"stage": stage.strip("$")})
    if permit:
        lam.add_permission(FunctionName=name, StatementId=unique("gw"), Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:us-east-1:{arn.split(':')[4]}:{api_id}/*")
    return api_id


def call(server: Server, api_id: str, path: str = "/", method: str = "GET", **kwargs: Any) -> requests.Response:
    headers = {"Host": f"{api_id}.execute-api.localhost", **kwargs.pop("headers", {})}
    return requests.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def event_of(response: requests.Response | httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()
    return event


def test_api_gateway_needs_a_resource_policy_statement(gw: Any, lam: Any, echo: tuple[str, str],
                                                       server: Server) -> None:
    name, arn = echo
    api_id = make_api(gw, lam, echo, ["$default"], permit=False)
    refused = call(server, api_id, "/x")
    assert (refused.status_code, refused.json()) == (500, {"message": "Internal Server Error"})
    assert refused.headers["apigw-requestid"]
    # A statement for another API allows nothing here.
    lam.add_permission(FunctionName=name, StatementId=unique("other"), Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{arn.split(':')[4]}:otherapi00/*")
    assert call(server, api_id, "/x").status_code == 500
    sid = unique("this")
    lam.add_permission(FunctionName=name, StatementId=sid, Action="lambda:InvokeFunction",
                       Principal="apigateway.amazonaws.com",
                       SourceArn=f"arn:aws:execute-api:us-east-1:{arn.split(':')[4]}:{api_id}/*/$default")
    assert call(server, api_id, "/x").status_code == 200
    lam.remove_permission(FunctionName=name, StatementId=sid)
    assert call(server, api_id, "/x").status_code == 500
    # An integration with credentials (an IAM role API Gateway assumes) needs no statement.
    quick = gw.create_api(Name=unique("role"), ProtocolType="HTTP", Target=arn,
                          CredentialsArn="arn:aws:iam::000000000000:role/apigw")["ApiId"]
    assert call(server, quick, "/x").status_code == 200


def test_a_recreated_function_starts_without_the_old_policy(gw: Any, lam: Any, server: Server) -> None:
    name = create_function(lam, ECHO)
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    api_id = make_api(gw, lam, (name, arn), ["$default"])
    assert call(server, api_id, "/").status_code == 200
    lam.delete_function(FunctionName=name)
    assert call(server, api_id, "/").status_code == 500  # the function is gone
    create_function(lam, ECHO, name=name)
    assert call(server, api_id, "/").status_code == 500  # and so is its policy


def test_route_selection_most_specific_first(gw: Any, lam: Any, echo: tuple[str, str], server: Server) -> None:
    routes = ["GET /items/{id}", "GET /items/special", "ANY /items/{id}", "GET /files/{path+}",
              "GET /{first}/{second}/detail", "ANY /{proxy+}", "$default"]
    api_id = make_api(gw, lam, echo, routes)
    expected = [
        ("GET", "/items/special", "GET /items/special", None),
        ("GET", "/items/7", "GET /items/{id}", {"id": "7"}),
        ("GET", "/items/a%20b", "GET /items/{id}", {"id": "a b"}),
        ("DELETE", "/items/7", "ANY /items/{id}", {"id": "7"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{path+}", {"path": "a/b/c.txt"}),
        ("GET", "/x/y/detail", "GET /{first}/{second}/detail", {"first": "x", "second": "y"}),
        ("PUT", "/items", "ANY /{proxy+}", {"proxy": "items"}),
        ("GET", "/files", "ANY /{proxy+}", {"proxy": "files"}),
        ("GET", "/", "$default", None),
    ]
    for method, path, route_key, parameters in expected:
        event = event_of(call(server, api_id, path, method))
        assert (event["routeKey"], event.get("pathParameters")) == (route_key, parameters), (method, path)
        assert event["requestContext"]["routeKey"] == route_key

    # Without a $default route, what no route matches is API Gateway's 404.
    strict = make_api(gw, lam, echo, ["GET /only"])
    assert call(server, strict, "/only").status_code == 200
    for method, path in (("GET", "/other"), ("POST", "/only"), ("GET", "/only/more")):
        missed = call(server, strict, path, method)
        assert (missed.status_code, missed.json()) == (404, {"message": "Not Found"}), (method, path)
        assert missed.headers["apigw-requestid"]
    unknown = call(server, "zzzzzzzzzz", "/only")
    assert (unknown.status_code, unknown.json()) == (404, {"message": "Not Found"})


def test_payload_2_0(gw: Any, lam: Any, echo: tuple[str, str], server: Server) -> None:
    api_id = make_api(gw, lam, echo, ["POST /items/{id}", "GET /binary"], stages=("$default", "prod"))
    r = call(server, api_id, "/items/42?a=1&a=2&b=", "POST",
             headers={"X-Multi": "one", "Cookie": "c1=v1; c2=v2", "Content-Type": "application/json",
                      "User-Agent": "tester/1.0"},
             data=b'{"k": "v"}')
    event = event_of(r)
    assert r.headers["x-version"] == "2.0"
    assert event["version"] == "2.0" and event["routeKey"] == "POST /items/{id}"
    assert (event["rawPath"], event["rawQueryString"]) == ("/items/42", "a=1&a=2&b=")
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-multi"] == "one" and "cookie" not in event["headers"]
    assert event["headers"]["host"] == f"{api_id}.execute-api.localhost"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"id": "42"}
    assert event["stageVariables"] == {"stage": "default"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": "v"}', False)
    context = event["requestContext"]
    assert (context["accountId"], context["apiId"], context["stage"]) == ("000000000000", api_id, "$default")
    assert (context["domainName"], context["domainPrefix"]) == (f"{api_id}.execute-api.localhost", api_id)
    assert context["http"] == {"method": "POST", "path": "/items/42", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "tester/1.0"}
    assert context["requestId"] == r.headers["apigw-requestid"] and context["timeEpoch"] > 0 and context["time"]

    # A named stage: the first path segment; the rest is routed.
    staged = event_of(call(server, api_id, "/prod/items/7", "POST", data=bytes([0, 255, 1]),
                           headers={"Content-Type": "application/octet-stream"}))
    assert (staged["routeKey"], staged["rawPath"], staged["requestContext"]["stage"]) == (
        "POST /items/{id}", "/prod/items/7", "prod")
    assert staged["stageVariables"] == {"stage": "prod"}
    assert (base64.b64decode(staged["body"]), staged["isBase64Encoded"]) == (bytes([0, 255, 1]), True)

    binary = call(server, api_id, "/binary")
    assert (binary.status_code, binary.content, binary.headers["content-type"]) == (200, bytes(range(256)),
                                                                                   "image/png")


def test_payload_1_0(gw: Any, lam: Any, echo: tuple[str, str], server: Server) -> None:
    api_id = make_api(gw, lam, echo, ["GET /items/{id}", "GET /cookies", "GET /binary", "ANY /{proxy+}"],
                      version="1.0")
    # A header sent twice (httpx can send that).
    r = httpx.get(server.url + "/items/42?a=1&a=2&b=3", timeout=30, headers=[
        ("Host", f"{api_id}.execute-api.localhost"), ("X-Multi", "one"), ("X-Multi", "two"), ("Cookie", "c1=v1")])
    event = event_of(r)
    assert r.headers["x-version"] == "1.0"
    assert (event["version"], event["resource"], event["path"], event["httpMethod"]) == (
        "1.0", "/items/{id}", "/items/42", "GET")
    assert event["headers"]["x-multi"] == "two" and event["multiValueHeaders"]["x-multi"] == ["one", "two"]
    assert event["headers"]["cookie"] == "c1=v1"
    assert event["queryStringParameters"] == {"a": "2", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["pathParameters"] == {"id": "42"} and event["stageVariables"] == {"stage": "default"}
    assert (event["body"], event["isBase64Encoded"]) == (None, False)
    context = event["requestContext"]
    assert (context["httpMethod"], context["resourcePath"], context["path"], context["stage"]) == (
        "GET", "/items/{id}", "/items/42", "$default")
    assert context["requestId"] == r.headers["apigw-requestid"] and context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["apiId"] == api_id and context["accountId"] == "000000000000"

    cookies = call(server, api_id, "/cookies")
    assert cookies.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    binary = call(server, api_id, "/binary")
    assert (binary.content, binary.headers["content-type"]) == (bytes(range(256)), "image/png")
    # 1.0 reads only its own answer shape: anything else is API Gateway's 500.
    for path in ("/plain", "/object-body", "/garbage"):
        bad = call(server, api_id, path)
        assert (bad.status_code, bad.json()) == (500, {"message": "Internal Server Error"}), path


def test_errors_get_api_gateways_answers(gw: Any, lam: Any, echo: tuple[str, str], server: Server) -> None:
    api_id = make_api(gw, lam, echo, ["ANY /{proxy+}"])
    for path in ("/boom", "/garbage", "/bad-base64"):
        failed = call(server, api_id, path)
        assert (failed.status_code, failed.json()) == (500, {"message": "Internal Server Error"}), path
    # 2.0 reads a plain object as a 200 JSON body.
    plain = call(server, api_id, "/plain")
    assert (plain.status_code, plain.json(), plain.headers["content-type"]) == (200, {"plain": True},
                                                                               "application/json")
    hurried = make_api(gw, lam, echo, ["ANY /{proxy+}"], timeout_ms=500)
    slow = call(server, hurried, "/slow")
    assert (slow.status_code, slow.json()) == (503, {"message": "Service Unavailable"})
    for size in (7 * 1024 * 1024, 11 * 1024 * 1024):
        big = call(server, api_id, "/upload", "POST", data=b"x" * size, headers={"Content-Type": "text/plain"})
        assert (big.status_code, big.json()) == (413, {"message": "Request Entity Too Large"}), size
    # The API still serves after all that.
    assert call(server, api_id, "/fine").status_code == 200

    disabled = make_api(gw, lam, echo, ["$default"], DisableExecuteApiEndpoint=True)
    off = call(server, disabled, "/")
    assert (off.status_code, off.json()) == (403, {"message": "Forbidden"})
    # A Host that names nothing goes to the Lambda API, whose answer is an unknown operation.
    stray = requests.get(server.url + "/", headers={"Host": "not-an-api!!"}, timeout=10)
    assert stray.status_code == 404 and stray.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_a_functions_own_connection_headers_are_dropped(gw: Any, lam: Any, echo: tuple[str, str],
                                                        server: Server) -> None:
    """Content-Length is the server's to write (a framework's own one, e.g. Mangum's, would be a
    second, conflicting header: clients such as wrk refuse the answer)."""
    for version in ("1.0", "2.0"):
        api_id = make_api(gw, lam, echo, ["ANY /{proxy+}"], version=version)
        r = call(server, api_id, "/lengthy")
        assert (r.status_code, r.content) == (200, b"hello")
        assert r.raw.headers.getlist("Content-Length") == ["5"] and "connection" not in r.raw.headers


def test_cors_preflight_is_answered_without_invoking(gw: Any, lam: Any, echo: tuple[str, str],
                                                     server: Server) -> None:
    cors = {"AllowOrigins": ["http://app.example"], "AllowMethods": ["GET", "POST"],
            "AllowHeaders": ["content-type"], "ExposeHeaders": ["x-version"], "MaxAge": 300}
    api_id = make_api(gw, lam, echo, ["ANY /{proxy+}"], CorsConfiguration=cors)
    preflight = call(server, api_id, "/items", "OPTIONS",
                     headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
    assert preflight.headers["access-control-allow-methods"] == "GET,POST"
    assert preflight.headers["access-control-max-age"] == "300"
    actual = call(server, api_id, "/items", headers={"Origin": "http://app.example"})
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == "http://app.example"
    assert actual.headers["access-control-expose-headers"] == "x-version"
    other = call(server, api_id, "/items", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_real_clients_by_name(gw: Any, lam: Any, echo: tuple[str, str], server: Server) -> None:
    api_id = make_api(gw, lam, echo, ["GET /items/{id}"])
    endpoint = gw.get_api(ApiId=api_id)["ApiEndpoint"]
    done = subprocess.run(["curl", "-sS", "-i", f"{endpoint}/items/5?x=1"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition("\n\n")  # text mode reads CRLF as LF
    assert head.startswith("HTTP/1.1 200") and "apigw-requestid:" in head.lower()
    assert json.loads(body)["pathParameters"] == {"id": "5"}
    # A client whose resolver does not know *.localhost names the server and sends the Host.
    with httpx.Client(timeout=30) as client:
        r = client.get(f"{server.url}/items/6", headers={"Host": endpoint.split("//", 1)[1]})
        assert r.status_code == 200 and r.json()["pathParameters"] == {"id": "6"}
