"""Published SnapStart versions go from Pending to Active once their template is initialized.

PublishVersion stores such a version Pending (control/states.py). Here, on the engine's
event loop, its template environment is made (worker/snapstart.py): the function's init and
before-snapshot hooks run once, and the version becomes Active, or Failed with the reason.
Versions still Pending when the server starts (it stopped in the middle) are picked up again.
"""

from __future__ import annotations

import asyncio
import logging

from lambdastack.control.states import States
from lambdastack.invoke.service import InvokeService
from lambdastack.store.base import Store
from lambdastack.store.records import VersionRecord
from lambdastack.worker.environment import EnvironmentStartError
from lambdastack.worker.snapstart import TemplateFailed
from lambdastack.worker.worker import Worker

log = logging.getLogger("lambdastack.invoke")


class SnapStartActivation:
    def __init__(self, store: Store, states: States, service: InvokeService, worker: Worker) -> None:
        self.store = store
        self.states = states
        self.service = service
        self.worker = worker
        self._active: dict[tuple[str, str, str, str], asyncio.Task[None]] = {}

    def reconcile(self, account: str, region: str, name: str) -> None:
        """Activate the function's Pending SnapStart versions (on the event loop)."""
        with self.store.read() as tx:
            versions = tx.list_versions(account, region, name, after=0)
        for record in versions:
            self._activate(record)

    def resume(self) -> None:
        for record in self.store.pending_versions():
            self._activate(record)

    def _activate(self, record: VersionRecord) -> None:
        config = record.config
        if config.get("State") != "Pending" or (config.get("SnapStart") or {}).get("OptimizationStatus") != "On":
            return
        key = (record.account, record.region, record.function_name, record.version)
        if key not in self._active:
            task = asyncio.get_running_loop().create_task(self._run(record))
            self._active[key] = task
            task.add_done_callback(lambda _: self._active.pop(key, None))

    async def _run(self, record: VersionRecord) -> None:
        spec = self.service.spec(record)
        error: tuple[str, str] | None = None
        if self.worker.snapstart.applies(spec):
            try:
                await self.worker.snapstart.prepare(spec)
            except TemplateFailed as e:
                error = (e.reason, e.code)
            except EnvironmentStartError as e:
                error = (str(e), "InternalError")
        else:
            log.info("%s:%s: SnapStart copies need namespace isolation and the built-in Python runtime; "
                     "its environments initialize on demand", record.function_name, record.version)
        await asyncio.to_thread(self.states.complete, record.account, record.region, record.function_name,
                                record.version, error=error)

    async def stop(self) -> None:
        for task in list(self._active.values()):
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
