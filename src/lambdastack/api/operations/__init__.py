"""Operation handlers: Lambda API operations mapped onto control services.

Control services are synchronous (SQLite, zip checks, unpacking); handlers run them on
the control thread so that the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from lambdastack.api.asgi import Handler
from lambdastack.control.plane import ControlPlane

T = TypeVar("T")


class ControlRunner:
    """Run a control call on the control executor and await its result."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    async def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))


def build_operations(control: ControlPlane, executor: Executor) -> dict[str, Handler]:
    from lambdastack.api.operations import (
        account,
        aliases,
        code_signing,
        concurrency,
        functions,
        layers,
        provisioned,
        tags,
        versions,
    )

    run = ControlRunner(executor)
    operations: dict[str, Handler] = {}
    for family in (functions, versions, aliases, tags, concurrency, account, layers, provisioned, code_signing):
        operations.update(family.handlers(control, run))
    return operations
