"""Put/Get/Delete/ListProvisionedConcurrencyConfig(s)."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.names import FunctionRef, parse_function_name, unqualified
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def _function(ctx: RequestContext, params: Params, operation: str) -> FunctionRef:
    return unqualified(parse_function_name(params["FunctionName"], ctx.account, ctx.region), operation)


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    provisioned = control.provisioned

    async def put_config(ctx: RequestContext, params: Params) -> Params:
        ref = _function(ctx, params, "PutProvisionedConcurrencyConfig")
        return await run(provisioned.put, ref, params["Qualifier"], params["ProvisionedConcurrentExecutions"])

    async def get_config(ctx: RequestContext, params: Params) -> Params:
        ref = _function(ctx, params, "GetProvisionedConcurrencyConfig")
        return await run(provisioned.get, ref, params["Qualifier"])

    async def delete_config(ctx: RequestContext, params: Params) -> None:
        ref = _function(ctx, params, "DeleteProvisionedConcurrencyConfig")
        await run(provisioned.delete, ref, params["Qualifier"])

    async def list_configs(ctx: RequestContext, params: Params) -> Params:
        ref = _function(ctx, params, "ListProvisionedConcurrencyConfigs")
        return await run(provisioned.list, ref, params.get("Marker"), params.get("MaxItems"))

    return {
        "PutProvisionedConcurrencyConfig": put_config,
        "GetProvisionedConcurrencyConfig": get_config,
        "DeleteProvisionedConcurrencyConfig": delete_config,
        "ListProvisionedConcurrencyConfigs": list_configs,
    }
