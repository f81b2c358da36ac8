"""Get/Put/DeleteFunctionCodeSigningConfig, as AWS answers them for a platform with no code
signing configurations: a function has none (Get answers an empty 200, Delete a 204), and one
cannot be attached (no configuration ARN names anything here). The function's absence is
reported first, as on AWS, except that an unknown configuration wins over it on Put."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.common import require_function
from lambdastack.control.names import FunctionRef, parse_function_name, unqualified
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    def require(ref: FunctionRef) -> None:
        with control.deps.store.read() as tx:
            require_function(tx, ref)

    def ref_of(ctx: RequestContext, params: Params, operation: str) -> FunctionRef:
        return unqualified(parse_function_name(params["FunctionName"], ctx.account, ctx.region), operation)

    async def get_config(ctx: RequestContext, params: Params) -> Params:
        await run(require, ref_of(ctx, params, "GetFunctionCodeSigningConfig"))
        return {}

    async def delete_config(ctx: RequestContext, params: Params) -> None:
        await run(require, ref_of(ctx, params, "DeleteFunctionCodeSigningConfig"))

    async def put_config(ctx: RequestContext, params: Params) -> Params:
        raise errors.CodeSigningConfigNotFound(
            "The code signing configuration cannot be found. Check that the provided configuration is not deleted: "
            f"{params['CodeSigningConfigArn']}.")

    return {"GetFunctionCodeSigningConfig": get_config, "DeleteFunctionCodeSigningConfig": delete_config,
            "PutFunctionCodeSigningConfig": put_config}
