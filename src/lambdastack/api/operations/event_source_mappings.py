"""Create/Get/Update/Delete/ListEventSourceMapping(s)."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.event_source_mappings import EventSourceMappingService
from lambdastack.control.names import parse_function_name

Params = dict[str, Any]


def handlers(service: EventSourceMappingService, run: ControlRunner) -> dict[str, Handler]:
    async def create(ctx: RequestContext, params: Params) -> Params:
        ref = parse_function_name(params["FunctionName"], ctx.account, ctx.region)
        return await run(service.create, ref, params)

    async def get(ctx: RequestContext, params: Params) -> Params:
        return await run(service.get, params["UUID"])

    async def update(ctx: RequestContext, params: Params) -> Params:
        return await run(service.update, params["UUID"], params, ctx.account, ctx.region)

    async def delete(ctx: RequestContext, params: Params) -> Params:
        return await run(service.delete, params["UUID"])

    async def list_mappings(ctx: RequestContext, params: Params) -> Params:
        return await run(service.list_mappings, ctx.account, ctx.region, params)

    return {
        "CreateEventSourceMapping": create,
        "GetEventSourceMapping": get,
        "UpdateEventSourceMapping": update,
        "DeleteEventSourceMapping": delete,
        "ListEventSourceMappings": list_mappings,
    }
