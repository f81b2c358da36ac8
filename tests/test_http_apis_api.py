"""API Gateway's HTTP APIs through the `apigatewayv2` client (boto3, and the AWS CLI): APIs,
integrations, routes and stages, with API Gateway's shapes, errors and statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, client_for, create_function

AWS = Path(sys.executable).with_name("aws")


@pytest.fixture(scope="module")
def gw(server: Server) -> Any:
    return client_for(server.url, "apigatewayv2")


@pytest.fixture(scope="module")
def function_arn(lam: Any) -> str:
    name = create_function(lam)
    arn: str = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    return arn


def error_of(call: Any, **params: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_quick_create_makes_the_integration_the_default_route_and_stage(gw: Any, function_arn: str,
                                                                       server: Server) -> None:
    api = gw.create_api(Name="quick", ProtocolType="HTTP", Target=function_arn)
    assert api["ResponseMetadata"]["HTTPStatusCode"] == 201
    api_id = api["ApiId"]
    assert len(api_id) == 10 and api_id.isalnum() and api_id.islower()
    assert api["ApiEndpoint"] == f"http://{api_id}.execute-api.localhost:{server.port}"
    assert (api["Name"], api["ProtocolType"], api["RouteSelectionExpression"]) == (
        "quick", "HTTP", "${request.method} ${request.path}")
    assert api["ApiKeySelectionExpression"] == "$request.header.x-api-key" and api["CreatedDate"]
    assert {k: v for k, v in gw.get_api(ApiId=api_id).items() if k != "ResponseMetadata"} == {
        k: v for k, v in api.items() if k != "ResponseMetadata"}
    [integration] = gw.get_integrations(ApiId=api_id)["Items"]
    assert integration == {
        "ConnectionType": "INTERNET", "IntegrationId": integration["IntegrationId"], "IntegrationMethod": "POST",
        "IntegrationType": "AWS_PROXY", "IntegrationUri": function_arn, "PayloadFormatVersion": "2.0",
        "TimeoutInMillis": 30000,
    }
    [route] = gw.get_routes(ApiId=api_id)["Items"]
    assert (route["RouteKey"], route["Target"], route["AuthorizationType"]) == (
        "$default", f"integrations/{integration['IntegrationId']}", "NONE")
    [stage] = gw.get_stages(ApiId=api_id)["Items"]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("$default", True)
    assert any(item["ApiId"] == api_id for item in gw.get_apis()["Items"])
    # Quick create with a route key of its own.
    keyed = gw.create_api(Name="keyed", ProtocolType="HTTP", Target=function_arn, RouteKey="GET /hello")
    assert [r["RouteKey"] for r in gw.get_routes(ApiId=keyed["ApiId"])["Items"]] == ["GET /hello"]

    assert gw.delete_api(ApiId=api_id)["ResponseMetadata"]["HTTPStatusCode"] == 204
    status, code, message = error_of(gw.get_api, ApiId=api_id)
    assert (status, code) == (404, "NotFoundException") and api_id in message
    assert error_of(gw.get_routes, ApiId=api_id)[:2] == (404, "NotFoundException")
    assert error_of(gw.delete_api, ApiId=api_id)[:2] == (404, "NotFoundException")


def test_integrations_routes_and_stages_one_by_one(gw: Any, function_arn: str) -> None:
    api_id = gw.create_api(Name="parts", ProtocolType="HTTP", Description="made step by step",
                           CorsConfiguration={"AllowOrigins": ["http://a.example"], "MaxAge": 60})["ApiId"]
    assert gw.get_api(ApiId=api_id)["CorsConfiguration"] == {"AllowOrigins": ["http://a.example"], "MaxAge": 60}
    invocations = (f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations")
    made = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=invocations,
                                 PayloadFormatVersion="1.0", TimeoutInMillis=5000)
    assert made["ResponseMetadata"]["HTTPStatusCode"] == 201
    integration_id = made["IntegrationId"]
    got = gw.get_integration(ApiId=api_id, IntegrationId=integration_id)
    assert (got["IntegrationUri"], got["PayloadFormatVersion"], got["TimeoutInMillis"]) == (invocations, "1.0", 5000)

    target = f"integrations/{integration_id}"
    keys = ["GET /items/{id}", "ANY /{proxy+}", "$default"]
    routes = [gw.create_route(ApiId=api_id, RouteKey=key, Target=target) for key in keys]
    assert [r["RouteKey"] for r in routes] == keys
    assert gw.get_route(ApiId=api_id, RouteId=routes[0]["RouteId"])["Target"] == target
    first = gw.get_routes(ApiId=api_id, MaxResults="2")
    rest = gw.get_routes(ApiId=api_id, MaxResults="2", NextToken=first["NextToken"])
    assert [r["RouteKey"] for r in first["Items"] + rest["Items"]] == keys and "NextToken" not in rest

    stage = gw.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=True, StageVariables={"table": "items"})
    assert (stage["StageName"], stage["StageVariables"], stage["AutoDeploy"]) == ("prod", {"table": "items"}, True)
    assert gw.get_stage(ApiId=api_id, StageName="prod")["StageVariables"] == {"table": "items"}

    # An integration in use cannot go; once its routes are gone, it can.
    assert error_of(gw.delete_integration, ApiId=api_id, IntegrationId=integration_id)[:2] == (
        409, "ConflictException")
    for route in routes:
        assert gw.delete_route(ApiId=api_id, RouteId=route["RouteId"])["ResponseMetadata"]["HTTPStatusCode"] == 204
    gw.delete_integration(ApiId=api_id, IntegrationId=integration_id)
    gw.delete_stage(ApiId=api_id, StageName="prod")
    assert gw.get_routes(ApiId=api_id)["Items"] == [] and gw.get_stages(ApiId=api_id)["Items"] == []
    for call, params in ((gw.get_route, {"RouteId": "abcdefg"}), (gw.get_integration, {"IntegrationId": "abcdefg"}),
                         (gw.get_stage, {"StageName": "prod"})):
        assert error_of(call, ApiId=api_id, **params)[:2] == (404, "NotFoundException")
    gw.delete_api(ApiId=api_id)


def test_bad_input_gets_api_gateways_errors(gw: Any, function_arn: str) -> None:
    def bad(call: Any, **params: Any) -> str:
        status, code, message = error_of(call, **params)
        assert (status, code) == (400, "BadRequestException"), (status, code, message)
        return message

    assert "WebSocket" in bad(gw.create_api, Name="ws", ProtocolType="WEBSOCKET",
                              RouteSelectionExpression="$request.body.action")
    api_id = gw.create_api(Name="bad", ProtocolType="HTTP")["ApiId"]

    def integration(**params: Any) -> str:
        return bad(gw.create_integration, ApiId=api_id, **params)

    assert "HTTP_PROXY" in integration(IntegrationType="HTTP_PROXY", IntegrationUri="http://example.com",
                                       PayloadFormatVersion="1.0")
    assert "PayloadFormatVersion" in integration(IntegrationType="AWS_PROXY", IntegrationUri=function_arn)
    assert "3.0" in integration(IntegrationType="AWS_PROXY", IntegrationUri=function_arn, PayloadFormatVersion="3.0")
    assert "integration URI" in integration(IntegrationType="AWS_PROXY", IntegrationUri="arn:aws:sqs:us-east-1:1:q",
                                            PayloadFormatVersion="2.0")
    assert "timeoutinmillis" in integration(IntegrationType="AWS_PROXY", IntegrationUri=function_arn,
                                            PayloadFormatVersion="2.0", TimeoutInMillis=40000).lower()
    for key in ("GET items", "FETCH /items", "GET /{proxy+}/more", "GET /a//b", "GET /a{b}", "GET /{x}/{x}"):
        assert "route key" in bad(gw.create_route, ApiId=api_id, RouteKey=key), key
    assert "target" in bad(gw.create_route, ApiId=api_id, RouteKey="GET /x", Target="integrations/nothing")
    assert "JWT" in bad(gw.create_route, ApiId=api_id, RouteKey="GET /x", AuthorizationType="JWT")
    assert "stage name" in bad(gw.create_stage, ApiId=api_id, StageName="no spaces")

    gw.create_route(ApiId=api_id, RouteKey="GET /x")
    assert error_of(gw.create_route, ApiId=api_id, RouteKey="GET /x")[:2] == (409, "ConflictException")
    gw.create_stage(ApiId=api_id, StageName="$default")
    assert error_of(gw.create_stage, ApiId=api_id, StageName="$default")[:2] == (409, "ConflictException")
    assert error_of(gw.create_route, ApiId="nothere123", RouteKey="GET /x")[:2] == (404, "NotFoundException")
    # Whatever this server does not serve is refused by name, never a 500.
    status, code, message = error_of(gw.create_authorizer, ApiId=api_id, AuthorizerType="JWT", Name="a",
                                     IdentitySource=["$request.header.Authorization"])
    assert (status, code) == (501, "NotImplementedException") and "CreateAuthorizer" in message
    rest = client_for(gw.meta.endpoint_url, "apigateway")
    status, code, message = error_of(rest.get_rest_apis)
    assert (status, code) == (501, "NotImplementedException") and "REST APIs" in message
    gw.delete_api(ApiId=api_id)


def test_the_aws_cli_drives_http_apis(server: Server, function_arn: str, tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }

    def cli(*args: str) -> Any:
        done = subprocess.run([str(AWS), "--endpoint-url", server.url, "--output", "json", "apigatewayv2", *args],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    api = cli("create-api", "--name", "from-cli", "--protocol-type", "HTTP", "--target", function_arn)
    assert api["ApiEndpoint"].startswith(f"http://{api['ApiId']}.execute-api.localhost:")
    assert [r["RouteKey"] for r in cli("get-routes", "--api-id", api["ApiId"])["Items"]] == ["$default"]
    assert cli("delete-api", "--api-id", api["ApiId"]) is None
