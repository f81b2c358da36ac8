"""CloudWatch metrics operations (the `cloudwatch` client): ListMetrics, GetMetricStatistics, GetMetricData."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.observe.cloudwatch_metrics.service import CloudWatchService

Params = dict[str, Any]


def handlers(metrics: CloudWatchService, run: ControlRunner) -> dict[str, Handler]:
    """`run`: the metrics thread, where the store is read and written."""

    def on(method: Callable[[str, str, Params], Params]) -> Handler:
        async def handler(ctx: RequestContext, params: Params) -> Params:
            result: Params = await run(method, ctx.account, ctx.region, params)
            return result
        return handler

    return {
        "ListMetrics": on(metrics.list_metrics), "GetMetricStatistics": on(metrics.get_metric_statistics),
        "GetMetricData": on(metrics.get_metric_data),
    }
