"""Invoke, InvokeAsync and InvokeWithResponseStream."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.invoke.service import InvokeService

Params = dict[str, Any]

INVOKE_ASYNC_LIMIT = 262_144


def handlers(service: InvokeService) -> dict[str, Handler]:
    async def invoke(ctx: RequestContext, params: Params) -> Params:
        return await service.invoke(ctx, params)

    async def invoke_async(ctx: RequestContext, params: Params) -> Params:
        payload = params.get("InvokeArgs") or b""
        if len(payload) > INVOKE_ASYNC_LIMIT:
            raise errors.RequestTooLarge(
                f"Request must be smaller than {INVOKE_ASYNC_LIMIT} bytes for the InvokeAsync operation"
            )
        await service.invoke(ctx, {"FunctionName": params["FunctionName"], "InvocationType": "Event",
                                    "Payload": payload})
        return {"Status": 202}

    async def invoke_with_response_stream(ctx: RequestContext, params: Params) -> Params:
        return await service.invoke_with_response_stream(ctx, params)

    return {"Invoke": invoke, "InvokeAsync": invoke_async, "InvokeWithResponseStream": invoke_with_response_stream}
