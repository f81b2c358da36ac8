"""PutFunctionConcurrency, GetFunctionConcurrency, DeleteFunctionConcurrency."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.names import FunctionRef, parse_function_name
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


FUNCTIONS_ONLY = ("This operation is permitted on Lambda functions only. Aliases and versions do not support this "
                  "operation. Please specify either a function name or an unqualified function ARN.")


def _function(ctx: RequestContext, params: Params, operation: str) -> FunctionRef:
    """AWS refuses any qualifier here, $LATEST included, with its own message."""
    ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region)
    if ref.qualifier is not None:
        raise errors.InvalidParameterValue(FUNCTIONS_ONLY)
    return ref


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    concurrency = control.concurrency

    async def put_function_concurrency(ctx: RequestContext, params: Params) -> Params:
        ref = _function(ctx, params, "PutFunctionConcurrency")
        reserved = await run(concurrency.put, ref, params["ReservedConcurrentExecutions"])
        return {"ReservedConcurrentExecutions": reserved}

    async def get_function_concurrency(ctx: RequestContext, params: Params) -> Params:
        reserved = await run(concurrency.get, _function(ctx, params, "GetFunctionConcurrency"))
        return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}

    async def delete_function_concurrency(ctx: RequestContext, params: Params) -> None:
        await run(concurrency.delete, _function(ctx, params, "DeleteFunctionConcurrency"))

    return {
        "PutFunctionConcurrency": put_function_concurrency,
        "GetFunctionConcurrency": get_function_concurrency,
        "DeleteFunctionConcurrency": delete_function_concurrency,
    }
