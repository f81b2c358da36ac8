"""Embedded placement: every invocation runs on this process's own worker."""

from __future__ import annotations

from lambdastack.worker.spec import EnvironmentSpec, Invocation, InvokeOutcome
from lambdastack.worker.worker import Worker


class LocalPlacement:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def invoke(self, spec: EnvironmentSpec, inv: Invocation) -> InvokeOutcome:
        return await self.worker.invoke(spec, inv)
