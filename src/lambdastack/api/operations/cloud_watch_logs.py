"""CloudWatch Logs operations (the `logs` client): log groups, streams and events of functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.observe.cloudwatch_logs.service import LogsService

Params = dict[str, Any]


def handlers(logs: LogsService, run: ControlRunner) -> dict[str, Handler]:
    """`run`: where the file work happens (off the event loop)."""

    def on(method: Callable[[str, str, Params], Params | None]) -> Handler:
        async def handler(ctx: RequestContext, params: Params) -> Params | None:
            result: Params | None = await run(method, ctx.account, ctx.region, params)
            return result
        return handler

    return {
        "DescribeLogGroups": on(logs.describe_log_groups), "CreateLogGroup": on(logs.create_log_group),
        "DeleteLogGroup": on(logs.delete_log_group), "PutRetentionPolicy": on(logs.put_retention_policy),
        "DeleteRetentionPolicy": on(logs.delete_retention_policy),
        "DescribeLogStreams": on(logs.describe_log_streams), "GetLogEvents": on(logs.get_log_events),
        "FilterLogEvents": on(logs.filter_log_events), "CreateLogStream": on(logs.create_log_stream),
        "PutLogEvents": on(logs.put_log_events),
    }
