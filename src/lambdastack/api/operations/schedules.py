"""EventBridge Scheduler operations (the `scheduler` client): schedules in the default group."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.scheduler import DEFAULT_GROUP, ScheduleService

Params = dict[str, Any]


def handlers(schedules: ScheduleService, run: ControlRunner) -> dict[str, Handler]:
    def on_schedules(method: Any) -> Handler:
        async def handler(ctx: RequestContext, params: Params) -> Params:
            result: Params = await run(method, ctx.account, ctx.region, params)
            return result
        return handler

    async def get_group(ctx: RequestContext, params: Params) -> Params:
        if params["Name"] != DEFAULT_GROUP:
            raise errors.ResourceNotFound(f"Schedule group {params['Name']} does not exist.")
        return _default_group(ctx)

    async def list_groups(ctx: RequestContext, params: Params) -> Params:
        return {"ScheduleGroups": [_default_group(ctx)] if DEFAULT_GROUP.startswith(params.get("NamePrefix") or "")
                else []}

    async def create_group(ctx: RequestContext, params: Params) -> Params:
        raise errors.Validation("lambdastack keeps schedules in the default schedule group only.")

    return {
        "CreateSchedule": on_schedules(schedules.create), "GetSchedule": on_schedules(schedules.get),
        "UpdateSchedule": on_schedules(schedules.update), "DeleteSchedule": on_schedules(schedules.delete),
        "ListSchedules": on_schedules(schedules.list_schedules),
        "GetScheduleGroup": get_group, "ListScheduleGroups": list_groups, "CreateScheduleGroup": create_group,
    }


def _default_group(ctx: RequestContext) -> Params:
    return {"Arn": f"arn:aws:scheduler:{ctx.region}:{ctx.account}:schedule-group/{DEFAULT_GROUP}",
            "Name": DEFAULT_GROUP, "State": "ACTIVE"}
