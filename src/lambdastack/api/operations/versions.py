"""PublishVersion, ListVersionsByFunction."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.names import parse_function_name, unqualified
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    versions = control.versions

    async def publish_version(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(parse_function_name(params["FunctionName"], ctx.account, ctx.region), "PublishVersion")
        return await run(versions.publish, ref, params)

    async def list_versions_by_function(ctx: RequestContext, params: Params) -> Params:
        ref = unqualified(
            parse_function_name(params["FunctionName"], ctx.account, ctx.region), "ListVersionsByFunction"
        )
        return await run(versions.list, ref, params.get("Marker"), params.get("MaxItems"))

    return {"PublishVersion": publish_version, "ListVersionsByFunction": list_versions_by_function}
