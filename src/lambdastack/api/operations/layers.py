"""PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn, ListLayers, ListLayerVersions,
DeleteLayerVersion, AddLayerVersionPermission, RemoveLayerVersionPermission, GetLayerVersionPolicy."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.layers import LayerRef, parse_layer_name, parse_version_number
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def _layer(ctx: RequestContext, params: Params) -> LayerRef:
    return parse_layer_name(params["LayerName"], ctx.account, ctx.region)


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    layers = control.layers

    async def publish_layer_version(ctx: RequestContext, params: Params) -> Params:
        return await run(layers.publish, _layer(ctx, params), params, ctx.base_url)

    async def get_layer_version(ctx: RequestContext, params: Params) -> Params:
        version = parse_version_number(params["VersionNumber"])
        return await run(layers.get, _layer(ctx, params), version, ctx.base_url)

    async def get_layer_version_by_arn(ctx: RequestContext, params: Params) -> Params:
        return await run(layers.get_by_arn, params["Arn"], ctx.account, ctx.region, ctx.base_url)

    async def list_layers(ctx: RequestContext, params: Params) -> Params:
        return await run(
            layers.list_layers,
            ctx.account,
            ctx.region,
            runtime=params.get("CompatibleRuntime"),
            architecture=params.get("CompatibleArchitecture"),
            marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
        )

    async def list_layer_versions(ctx: RequestContext, params: Params) -> Params:
        return await run(
            layers.list_versions,
            _layer(ctx, params),
            runtime=params.get("CompatibleRuntime"),
            architecture=params.get("CompatibleArchitecture"),
            marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
        )

    async def delete_layer_version(ctx: RequestContext, params: Params) -> None:
        await run(layers.delete, _layer(ctx, params), parse_version_number(params["VersionNumber"]))

    async def add_layer_version_permission(ctx: RequestContext, params: Params) -> Params:
        version = parse_version_number(params["VersionNumber"])
        return await run(layers.add_permission, _layer(ctx, params), version, params)

    async def remove_layer_version_permission(ctx: RequestContext, params: Params) -> None:
        version = parse_version_number(params["VersionNumber"])
        await run(
            layers.remove_permission, _layer(ctx, params), version, params["StatementId"], params.get("RevisionId")
        )

    async def get_layer_version_policy(ctx: RequestContext, params: Params) -> Params:
        version = parse_version_number(params["VersionNumber"])
        return await run(layers.get_policy, _layer(ctx, params), version)

    return {
        "PublishLayerVersion": publish_layer_version,
        "GetLayerVersion": get_layer_version,
        "GetLayerVersionByArn": get_layer_version_by_arn,
        "ListLayers": list_layers,
        "ListLayerVersions": list_layer_versions,
        "DeleteLayerVersion": delete_layer_version,
        "AddLayerVersionPermission": add_layer_version_permission,
        "RemoveLayerVersionPermission": remove_layer_version_permission,
        "GetLayerVersionPolicy": get_layer_version_policy,
    }
