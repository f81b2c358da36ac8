"""CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions, UpdateFunctionCode,
UpdateFunctionConfiguration, DeleteFunction."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.names import MAX_NAME, parse_function_name, unqualified
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    functions = control.functions

    async def create_function(ctx: RequestContext, params: Params) -> Params:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region)
        if len(ref.name) > MAX_NAME:  # elsewhere a longer name is only one that names nothing (404), as on AWS
            raise errors.InvalidParameterValue(
                f"1 validation error detected: Value '{ref.name}' at 'functionName' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_NAME}")
        return await run(functions.create, ref, params)

    async def get_function(ctx: RequestContext, params: Params) -> Params:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))
        return await run(functions.get, ref, ctx.base_url)

    async def get_function_configuration(ctx: RequestContext, params: Params) -> Params:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))
        return await run(functions.get_configuration, ref)

    async def list_functions(ctx: RequestContext, params: Params) -> Params:
        return await run(
            functions.list,
            ctx.account,
            ctx.region,
            marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
            all_versions=params.get("FunctionVersion") == "ALL",
            master_region=params.get("MasterRegion"),
        )

    async def update_function_code(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(parse_function_name(params["FunctionName"], ctx.account, ctx.region), "UpdateFunctionCode")
        return await run(functions.update_code, ref, params)

    async def update_function_configuration(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(
            parse_function_name(params["FunctionName"], ctx.account, ctx.region),
            "UpdateFunctionConfiguration",
        )
        return await run(functions.update_configuration, ref, params)

    async def delete_function(ctx: RequestContext, params: Params) -> None:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))
        await run(functions.delete, ref)

    return {
        "CreateFunction": create_function,
        "GetFunction": get_function,
        "GetFunctionConfiguration": get_function_configuration,
        "ListFunctions": list_functions,
        "UpdateFunctionCode": update_function_code,
        "UpdateFunctionConfiguration": update_function_configuration,
        "DeleteFunction": delete_function,
    }
