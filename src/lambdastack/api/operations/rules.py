"""EventBridge operations (the `events` client): rules and targets on the default bus, PutEvents."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.rules import RuleService
from lambdastack.events.rules.bus import EventBus

Params = dict[str, Any]


def handlers(rules: RuleService, bus: EventBus, run: ControlRunner) -> dict[str, Handler]:
    def on_rules(method: Any) -> Handler:
        async def handler(ctx: RequestContext, params: Params) -> Params | None:
            result: Params | None = await run(method, ctx.account, ctx.region, params)
            return result
        return handler

    async def enable(ctx: RequestContext, params: Params) -> None:
        await run(rules.set_state, ctx.account, ctx.region, params, "ENABLED")

    async def disable(ctx: RequestContext, params: Params) -> None:
        await run(rules.set_state, ctx.account, ctx.region, params, "DISABLED")

    async def put_events(ctx: RequestContext, params: Params) -> Params:
        return await bus.put_events(ctx.account, ctx.region, params)

    return {
        "PutRule": on_rules(rules.put_rule), "DescribeRule": on_rules(rules.describe_rule),
        "ListRules": on_rules(rules.list_rules), "DeleteRule": on_rules(rules.delete_rule),
        "EnableRule": enable, "DisableRule": disable,
        "PutTargets": on_rules(rules.put_targets), "RemoveTargets": on_rules(rules.remove_targets),
        "ListTargetsByRule": on_rules(rules.list_targets), "PutEvents": put_events,
    }
