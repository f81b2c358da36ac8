"""TagResource, UntagResource, ListTags: the function's full ARN is in the path."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    tags = control.tags

    async def tag_resource(ctx: RequestContext, params: Params) -> None:
        await run(tags.tag, params["Resource"], ctx.account, ctx.region, params["Tags"])

    async def untag_resource(ctx: RequestContext, params: Params) -> None:
        await run(tags.untag, params["Resource"], ctx.account, ctx.region, params["TagKeys"])

    async def list_tags(ctx: RequestContext, params: Params) -> Params:
        return {"Tags": await run(tags.list, params["Resource"], ctx.account, ctx.region)}

    return {"TagResource": tag_resource, "UntagResource": untag_resource, "ListTags": list_tags}
