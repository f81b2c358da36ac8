"""AddPermission, RemovePermission, GetPolicy: functions' resource-based policies."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.names import FunctionRef, parse_function_name
from lambdastack.control.policies import PolicyService

Params = dict[str, Any]


def _ref(ctx: RequestContext, params: Params) -> FunctionRef:
    return parse_function_name(params["FunctionName"], ctx.account, ctx.region, qualifier=params.get("Qualifier"))


def handlers(service: PolicyService, run: ControlRunner) -> dict[str, Handler]:
    async def add_permission(ctx: RequestContext, params: Params) -> Params:
        return await run(service.add_permission, _ref(ctx, params), params)

    async def remove_permission(ctx: RequestContext, params: Params) -> None:
        await run(service.remove_permission, _ref(ctx, params), params["StatementId"], params.get("RevisionId"))

    async def get_policy(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get_policy, _ref(ctx, params))

    return {"AddPermission": add_permission, "RemovePermission": remove_permission, "GetPolicy": get_policy}
