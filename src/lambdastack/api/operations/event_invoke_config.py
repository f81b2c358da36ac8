"""Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s)."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.event_invoke_config import EventInvokeConfigService
from lambdastack.control.names import FunctionRef, parse_function_name, unqualified

Params = dict[str, Any]


def _ref(ctx: RequestContext, params: Params) -> FunctionRef:
    return parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))


def handlers(service: EventInvokeConfigService, run: ControlRunner) -> dict[str, Handler]:
    async def put(ctx: RequestContext, params: Params) -> Params:
        return await run(service.put, _ref(ctx, params), params)

    async def update(ctx: RequestContext, params: Params) -> Params:
        return await run(service.update, _ref(ctx, params), params)

    async def get(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get, _ref(ctx, params))

    async def delete(ctx: RequestContext, params: Params) -> None:
        await run(service.delete, _ref(ctx, params))

    async def list_configs(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(_ref(ctx, params), "ListFunctionEventInvokeConfigs")
        return await run(service.list, ref, params.get("Marker"), params.get("MaxItems"))

    return {
        "PutFunctionEventInvokeConfig": put,
        "UpdateFunctionEventInvokeConfig": update,
        "GetFunctionEventInvokeConfig": get,
        "DeleteFunctionEventInvokeConfig": delete,
        "ListFunctionEventInvokeConfigs": list_configs,
    }
