"""Create/Get/Update/Delete/ListCodeSigningConfig(s), ListFunctionsByCodeSigningConfig and
Put/Get/DeleteFunctionCodeSigningConfig (see control/code_signing.py for what is enforced)."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.code_signing import CodeSigningService
from lambdastack.control.names import FunctionRef, parse_function_name, unqualified
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    def service() -> CodeSigningService:
        if control.code_signing is None:
            raise errors.ServiceError("Code signing configurations are not available on this server.")
        return control.code_signing

    def ref_of(ctx: RequestContext, params: Params, operation: str) -> FunctionRef:
        return unqualified(parse_function_name(params["FunctionName"], ctx.account, ctx.region), operation)

    async def create_config(ctx: RequestContext, params: Params) -> Params:
        return await run(service().create, ctx.account, ctx.region, params)

    async def get_config(ctx: RequestContext, params: Params) -> Params:
        return await run(service().get, params["CodeSigningConfigArn"], ctx.account, ctx.region)

    async def update_config(ctx: RequestContext, params: Params) -> Params:
        return await run(service().update, params["CodeSigningConfigArn"], ctx.account, ctx.region, params)

    async def delete_config(ctx: RequestContext, params: Params) -> None:
        await run(service().delete, params["CodeSigningConfigArn"], ctx.account, ctx.region)

    async def list_configs(ctx: RequestContext, params: Params) -> Params:
        return await run(service().list_configs, ctx.account, ctx.region, params.get("Marker"), params.get("MaxItems"))

    async def list_functions(ctx: RequestContext, params: Params) -> Params:
        return await run(service().list_functions, params["CodeSigningConfigArn"], ctx.account, ctx.region,
                         params.get("Marker"), params.get("MaxItems"))

    async def put_function_config(ctx: RequestContext, params: Params) -> Params:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region)
        return await run(service().put_function, unqualified(ref, "PutFunctionCodeSigningConfig"),
                         params["CodeSigningConfigArn"])

    async def get_function_config(ctx: RequestContext, params: Params) -> Params:
        return await run(service().get_function, ref_of(ctx, params, "GetFunctionCodeSigningConfig"))

    async def delete_function_config(ctx: RequestContext, params: Params) -> None:
        await run(service().delete_function, ref_of(ctx, params, "DeleteFunctionCodeSigningConfig"))

    return {
        "CreateCodeSigningConfig": create_config,
        "GetCodeSigningConfig": get_config,
        "UpdateCodeSigningConfig": update_config,
        "DeleteCodeSigningConfig": delete_config,
        "ListCodeSigningConfigs": list_configs,
        "ListFunctionsByCodeSigningConfig": list_functions,
        "PutFunctionCodeSigningConfig": put_function_config,
        "GetFunctionCodeSigningConfig": get_function_config,
        "DeleteFunctionCodeSigningConfig": delete_function_config,
    }
