"""API Gateway v2 operations on HTTP APIs: APIs, integrations, routes and stages."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.http_apis import HttpApiService

Params = dict[str, Any]


def handlers(service: HttpApiService, run: ControlRunner) -> dict[str, Handler]:
    async def create_api(ctx: RequestContext, params: Params) -> Params:
        return await run(service.create_api, ctx.account, ctx.region, params)

    async def get_api(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_api, params["ApiId"])

    async def get_apis(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_apis, ctx.account, ctx.region, params)

    async def delete_api(ctx: RequestContext, params: Params) -> None:
        await run(service.delete_api, params["ApiId"])

    async def create_integration(ctx: RequestContext, params: Params) -> Params:
        return await run(service.create_integration, params["ApiId"], params)

    async def get_integration(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_integration, params["ApiId"], params["IntegrationId"])

    async def get_integrations(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_integrations, params["ApiId"], params)

    async def delete_integration(ctx: RequestContext, params: Params) -> None:
        await run(service.delete_integration, params["ApiId"], params["IntegrationId"])

    async def create_route(ctx: RequestContext, params: Params) -> Params:
        return await run(service.create_route, params["ApiId"], params)

    async def get_route(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_route, params["ApiId"], params["RouteId"])

    async def get_routes(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_routes, params["ApiId"], params)

    async def delete_route(ctx: RequestContext, params: Params) -> None:
        await run(service.delete_route, params["ApiId"], params["RouteId"])

    async def create_stage(ctx: RequestContext, params: Params) -> Params:
        return await run(service.create_stage, params["ApiId"], params)

    async def get_stage(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_stage, params["ApiId"], params["StageName"])

    async def get_stages(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_stages, params["ApiId"], params)

    async def delete_stage(ctx: RequestContext, params: Params) -> None:
        await run(service.delete_stage, params["ApiId"], params["StageName"])

    return {
        "CreateApi": create_api, "GetApi": get_api, "GetApis": get_apis, "DeleteApi": delete_api,
        "CreateIntegration": create_integration, "GetIntegration": get_integration,
        "GetIntegrations": get_integrations, "DeleteIntegration": delete_integration,
        "CreateRoute": create_route, "GetRoute": get_route, "GetRoutes": get_routes, "DeleteRoute": delete_route,
        "CreateStage": create_stage, "GetStage": get_stage, "GetStages": get_stages, "DeleteStage": delete_stage,
    }
