"""CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases."""

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
    aliases = control.aliases

    async def create_alias(ctx: RequestContext, params: Params) -> Params:
        return await run(aliases.create, _function(ctx, params, "CreateAlias"), params)

    async def get_alias(ctx: RequestContext, params: Params) -> Params:
        return await run(aliases.get, _function(ctx, params, "GetAlias"), params["Name"])

    async def update_alias(ctx: RequestContext, params: Params) -> Params:
        return await run(aliases.update, _function(ctx, params, "UpdateAlias"), params["Name"], params)

    async def delete_alias(ctx: RequestContext, params: Params) -> None:
        await run(aliases.delete, _function(ctx, params, "DeleteAlias"), params["Name"])

    async def list_aliases(ctx: RequestContext, params: Params) -> Params:
        return await run(
            aliases.list,
            _function(ctx, params, "ListAliases"),
            version=params.get("FunctionVersion"),
            marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
        )

    return {
        "CreateAlias": create_alias,
        "GetAlias": get_alias,
        "UpdateAlias": update_alias,
        "DeleteAlias": delete_alias,
        "ListAliases": list_aliases,
    }
