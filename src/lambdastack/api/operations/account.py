"""GetAccountSettings."""

from __future__ import annotations

from typing import Any

from lambdastack.api.asgi import Handler
from lambdastack.api.context import RequestContext
from lambdastack.api.operations import ControlRunner
from lambdastack.control.plane import ControlPlane

Params = dict[str, Any]


def handlers(control: ControlPlane, run: ControlRunner) -> dict[str, Handler]:
    async def get_account_settings(ctx: RequestContext, params: Params) -> Params:
        return await run(control.account.settings, ctx.account, ctx.region)

    return {"GetAccountSettings": get_account_settings}
