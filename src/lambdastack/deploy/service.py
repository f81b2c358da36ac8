"""Deployments: create one, let it run, read it, watch it live.

A deployment moves an alias from the version it points to (the old version) to a new
published version, one step of its strategy after the other, by giving the new version a
growing weight in the alias's routing. While a step is held, both versions' health is
compared every `check_interval` seconds; a breach rolls the alias back to the old version
at once, and the deployment ends `RolledBack` with the reason. Otherwise the alias ends on
the new version alone and the deployment `Succeeded`.

Every change of a deployment is written to the store before watchers hear of it. The alias
is moved with its RevisionId as a precondition: if someone else changes the alias during a
deployment, the deployment stops (`Aborted`) and leaves the alias as that person left it.
A deployment that was running when the server stopped is rolled back when it starts again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from lambdastack import errors
from lambdastack.control import configuration, pagination
from lambdastack.control.aliases import AliasService
from lambdastack.control.names import FunctionRef, function_arn, is_version_number, parse_function_name
from lambdastack.deploy.health import HealthPolicy, Verdict, judge
from lambdastack.deploy.strategies import Strategy
from lambdastack.observe.metrics import Metrics
from lambdastack.store.base import Store
from lambdastack.store.records import DeploymentRecord

log = logging.getLogger("lambdastack.deploy")

T = TypeVar("T")

IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
ROLLED_BACK = "RolledBack"
ABORTED = "Aborted"
FINISHED = (SUCCEEDED, ROLLED_BACK, ABORTED)
MAX_EVENTS = 100


def render(record: DeploymentRecord) -> dict[str, Any]:
    """A deployment as the API shows it."""
    return {
        "DeploymentId": record.id,
        "FunctionName": record.function_name,
        "FunctionArn": function_arn(record.account, record.region, record.function_name),
        "AliasName": record.alias,
        "AliasArn": function_arn(record.account, record.region, record.function_name, record.alias),
        "FromVersion": record.from_version,
        "ToVersion": record.to_version,
        "Strategy": {**record.strategy, "Description": Strategy(**_strategy_args(record.strategy)).describe()},
        "Health": record.health_policy,
        "Status": record.status,
        "StatusReason": record.reason,
        "Weight": record.weight,
        "CreatedDate": record.created,
        "LastModified": record.updated,
        "Progress": {k: v for k, v in record.progress.items() if k != "AliasRevisionId"},
    }


def _strategy_args(document: dict[str, Any]) -> dict[str, Any]:
    return {"kind": document["Type"], "percent": document.get("Percent", 100.0),
            "interval_s": document.get("IntervalSeconds", 0.0)}


def _event(record: DeploymentRecord, message: str) -> None:
    events = record.progress.setdefault("Events", [])
    events.append({"Time": configuration.timestamp(), "Message": message})
    del events[:-MAX_EVENTS]


class DeploymentService:
    def __init__(
        self,
        store: Store,
        aliases: AliasService,
        metrics: Metrics,
        control: Executor,
        *,
        check_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.aliases = aliases
        self.metrics = metrics
        self.control = control
        self.check_interval = check_interval
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    async def _on_control(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a control or store call on the control thread, where every change is made."""
        return await asyncio.get_running_loop().run_in_executor(self.control, functools.partial(fn, *args))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Roll back the deployments that were running when the server stopped."""
        with self.store.read() as tx:
            unfinished = tx.unfinished_deployments()
        for record in unfinished:
            # The alias may have moved just before the stop without the deployment's record
            # knowing its new revision: take the alias as ours if it is in a state we make.
            alias = self.store.get_alias(record.account, record.region, record.function_name, record.alias)
            if alias is not None and alias.function_version in (record.from_version, record.to_version) and set(
                alias.weights
            ) <= {record.to_version}:
                record.progress["AliasRevisionId"] = alias.revision_id
            await self._roll_back(record, "the server stopped during the deployment")

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    # -- the API ---------------------------------------------------------------------------

    async def create(self, request: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        ref, alias, target, strategy, policy = self._parse(request, account, region)
        record = await self._on_control(self._insert, ref, alias, target, strategy, policy)
        self._changed[record.id] = asyncio.Event()
        self._tasks[record.id] = asyncio.create_task(self._run(record))
        return render(record)

    def get(self, deployment_id: str) -> dict[str, Any]:
        with self.store.read() as tx:
            record = tx.get_deployment(deployment_id)
        if record is None:
            raise errors.ResourceNotFound(f"Deployment not found: {deployment_id}")
        return render(record)

    def list(
        self, account: str, region: str, *, function_name: str | None, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        before = pagination.decode(marker, lambda key: isinstance(key, list) and len(key) == 2)
        name = parse_function_name(function_name, account, region).name if function_name else None
        size = pagination.page_size(max_items)
        with self.store.read() as tx:
            rows = tx.list_deployments(account, region, function_name=name,
                                       before=tuple(before) if before else None, limit=size + 1)
        page = rows[:size]
        out: dict[str, Any] = {"Deployments": [render(r) for r in page]}
        if len(rows) > size:
            out["NextMarker"] = pagination.encode([page[-1].created, page[-1].id])
        return out

    async def watch(self, deployment_id: str) -> AsyncIterator[dict[str, Any]]:
        """The deployment now, then after each change, until it has finished."""
        while True:
            changed = self._changed.get(deployment_id)
            document = await asyncio.to_thread(self.get, deployment_id)
            yield document
            if document["Status"] in FINISHED:
                return
            if changed is None:  # not run by this server any more: poll the store
                await asyncio.sleep(self.check_interval)
            else:
                await changed.wait()

    # -- creating ----------------------------------------------------------------------------

    @staticmethod
    def _parse(
        request: dict[str, Any], account: str, region: str
    ) -> tuple[FunctionRef, str, str, Strategy, HealthPolicy]:
        for member in ("FunctionName", "AliasName", "TargetVersion"):
            if not isinstance(request.get(member), str) or not request[member]:
                raise errors.InvalidParameterValue(f"{member} is required (a string).")
        ref = parse_function_name(request["FunctionName"], account, region)
        if ref.qualifier is not None:
            raise errors.InvalidParameterValue("FunctionName must not carry a qualifier; name the alias as AliasName.")
        target = request["TargetVersion"]
        if not is_version_number(target):
            raise errors.InvalidParameterValue(
                f"TargetVersion must be a published version number, not {target!r}: publish $LATEST first."
            )
        strategy = Strategy.from_request(request.get("Strategy") or {"Type": "AllAtOnce"})
        return ref, request["AliasName"], target, strategy, HealthPolicy.from_request(request.get("Health"))

    def _insert(
        self, ref: FunctionRef, alias_name: str, target: str, strategy: Strategy, policy: HealthPolicy
    ) -> DeploymentRecord:
        with self.store.transaction() as tx:
            if tx.get_function(ref.account, ref.region, ref.name) is None:
                raise errors.ResourceNotFound(f"Function not found: {ref.arn}")
            alias = tx.get_alias(ref.account, ref.region, ref.name, alias_name)
            if alias is None:
                raise errors.ResourceNotFound(
                    f"Cannot find alias arn: {function_arn(ref.account, ref.region, ref.name, alias_name)}"
                )
            if tx.get_version(ref.account, ref.region, ref.name, target) is None:
                version_arn = function_arn(ref.account, ref.region, ref.name, target)
                raise errors.ResourceNotFound(f"Function not found: {version_arn}")
            running = tx.list_deployments(ref.account, ref.region, function_name=ref.name, status=IN_PROGRESS)
            if any(d.alias == alias_name for d in running):
                raise errors.ResourceConflict(f"A deployment of alias {alias_name} is already in progress.")
            if alias.weights:
                raise errors.ResourceConflict(
                    f"Alias {alias_name} already routes traffic to more than one version; "
                    "point it at one version before deploying."
                )
            if alias.function_version == target:
                raise errors.InvalidParameterValue(f"Alias {alias_name} already points to version {target}.")
            now = configuration.timestamp()
            record = DeploymentRecord(
                id=str(uuid.uuid4()),
                account=ref.account,
                region=ref.region,
                function_name=ref.name,
                alias=alias_name,
                from_version=alias.function_version,
                to_version=target,
                strategy=strategy.to_json(),
                health_policy=policy.to_json(),
                status=IN_PROGRESS,
                created=now,
                updated=now,
                progress={"Step": 0, "Steps": len(strategy.steps()), "AliasRevisionId": alias.revision_id},
            )
            _event(record, f"deploying version {target} to alias {alias_name} (from version "
                           f"{alias.function_version}): {strategy.describe()}")
            tx.put_deployment(record)
        return record

    # -- running -----------------------------------------------------------------------------

    async def _run(self, record: DeploymentRecord) -> None:
        try:
            await self._steps(record)
        except asyncio.CancelledError:
            raise
        except errors.LambdaError as e:
            # The function, the alias or a version went away, or the alias was changed by
            # someone else: stop here and leave the alias alone.
            await self._finish(record, ABORTED, f"the alias could not be moved: {e.message}")
        except Exception as e:
            log.exception("deployment %s failed", record.id)
            await self._roll_back(record, f"lambdastack hit an internal error: {e}")
        finally:
            self._tasks.pop(record.id, None)

    async def _steps(self, record: DeploymentRecord) -> None:
        strategy = Strategy(**_strategy_args(record.strategy))
        policy = HealthPolicy.from_request(record.health_policy)
        started = self.clock()
        steps = strategy.steps()
        for index, step in enumerate(steps, start=1):
            await self._move(record, step.weight)
            record.progress.update(Step=index, Steps=len(steps))
            _event(record, f"step {index}/{len(steps)}: version {record.to_version} gets {step.weight:.0%} "
                           f"of the traffic" + (f" for {step.hold_s:g}s" if step.hold_s else ""))
            if step.weight >= 1.0:
                break
            await self._save(record)
            ends = self.clock() + step.hold_s
            while (left := ends - self.clock()) > 0:
                await asyncio.sleep(min(self.check_interval, left))
                moved = await asyncio.to_thread(self._moved_by_someone_else, record)
                if moved:
                    await self._finish(record, ABORTED, f"{moved}; the deployment left it as it is")
                    return
                verdict = self._health(record, policy, self.clock() - started)
                if not verdict.healthy:
                    await self._roll_back(record, verdict.reason)
                    return
                await self._save(record)
            health = record.progress.get("Health") or {}
            if not health.get("Judged", True):
                _event(record, f"not enough traffic to judge: {health.get('Reason')}; going on")
        await self._finish(record, SUCCEEDED, f"alias {record.alias} points to version {record.to_version}")

    def _moved_by_someone_else(self, record: DeploymentRecord) -> str | None:
        """Why the alias is no longer as the deployment left it (None: it is)."""
        alias = self.store.get_alias(record.account, record.region, record.function_name, record.alias)
        if alias is None:
            return f"alias {record.alias} was deleted"
        if alias.revision_id != record.progress.get("AliasRevisionId"):
            return f"alias {record.alias} was changed outside the deployment"
        return None

    def _health(self, record: DeploymentRecord, policy: HealthPolicy, elapsed: float) -> Verdict:
        key = (record.account, record.region, record.function_name)
        new = self.metrics.snapshot((*key, record.to_version), elapsed)
        old = self.metrics.snapshot((*key, record.from_version), elapsed)
        verdict = judge(policy, new, old, record.to_version, record.from_version)
        record.progress["Health"] = {
            "New": new.to_json(),
            "Old": old.to_json(),
            "Judged": verdict.judged,
            "Healthy": verdict.healthy,
            "Reason": verdict.reason,
        }
        return verdict

    async def _move(self, record: DeploymentRecord, weight: float) -> None:
        """Give the new version `weight` of the alias's traffic (all of it: make it the primary)."""
        if weight >= 1.0:
            primary, weights = record.to_version, {}
        else:
            primary, weights = record.from_version, {record.to_version: weight}
        await self._point_alias(record, primary, weights)
        record.weight = weight

    async def _point_alias(self, record: DeploymentRecord, primary: str, weights: dict[str, float]) -> None:
        ref = FunctionRef(record.account, record.region, record.function_name)
        params: dict[str, Any] = {"FunctionVersion": primary, "RoutingConfig": {"AdditionalVersionWeights": weights}}
        if record.progress.get("AliasRevisionId"):
            params["RevisionId"] = record.progress["AliasRevisionId"]
        alias = await self._on_control(self.aliases.update, ref, record.alias, params)
        record.progress["AliasRevisionId"] = alias["RevisionId"]

    async def _roll_back(self, record: DeploymentRecord, reason: str) -> None:
        try:
            await self._point_alias(record, record.from_version, {})
        except errors.LambdaError as e:
            await self._finish(record, ABORTED, f"{reason}; the alias could not be rolled back: {e.message}")
            return
        record.weight = 0.0
        _event(record, f"rolled back: alias {record.alias} points to version {record.from_version} again")
        await self._finish(record, ROLLED_BACK, reason)

    async def _finish(self, record: DeploymentRecord, status: str, reason: str) -> None:
        record.status, record.reason = status, reason
        _event(record, f"{status}: {reason}")
        await self._save(record)
        log.info("deployment %s of %s:%s %s: %s", record.id, record.function_name, record.alias, status, reason)

    async def _save(self, record: DeploymentRecord) -> None:
        record.updated = configuration.timestamp()
        await self._on_control(self._put, record)
        changed = self._changed.get(record.id)
        if changed is not None:
            self._changed[record.id] = asyncio.Event()
            changed.set()
        if record.status in FINISHED:
            self._changed.pop(record.id, None)

    def _put(self, record: DeploymentRecord) -> None:
        with self.store.transaction() as tx:
            tx.put_deployment(record)
