"""Create/Get/Update/Delete/ListFunctionUrlConfig(s)."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.function_urls import FunctionUrlService
from lambdastack.control.names import FunctionRef, parse_function_name, unqualified

Params = dict[str, Any]


def _ref(ctx: RequestContext, params: Params) -> FunctionRef:
    return parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))


def handlers(service: FunctionUrlService, run: ControlRunner) -> dict[str, Handler]:
    async def create(ctx: RequestContext, params: Params) -> Params:
        return await run(service.create, _ref(ctx, params), params)

    async def get(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get, _ref(ctx, params))

    async def update(ctx: RequestContext, params: Params) -> Params:
        return await run(service.update, _ref(ctx, params), params)

    async def delete(ctx: RequestContext, params: Params) -> None:
        await run(service.delete, _ref(ctx, params))

    async def list_urls(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(_ref(ctx, params), "ListFunctionUrlConfigs")
        return await run(service.list, ref, params.get("Marker"), params.get("MaxItems"))

    return {
        "CreateFunctionUrlConfig": create,
        "GetFunctionUrlConfig": get,
        "UpdateFunctionUrlConfig": update,
        "DeleteFunctionUrlConfig": delete,
        "ListFunctionUrlConfigs": list_urls,
    }
