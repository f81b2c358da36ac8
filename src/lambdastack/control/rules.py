"""EventBridge rules on the default event bus: PutRule, DescribeRule, ListRules, DeleteRule,
Enable/DisableRule, PutTargets, RemoveTargets, ListTargetsByRule.

A rule has a `ScheduleExpression` (lambdastack.schedules), an `EventPattern`
(lambdastack.patterns), or both; its targets are Lambda functions (other targets are
answered as failed entries). `active()` hands the delivery side the enabled rules with their
compiled patterns and schedules, cached until a rule or a target changes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.patterns import InvalidPattern, compile_pattern
from lambdastack.schedules import CronSchedule, InvalidSchedule, RateSchedule, parse_schedule
from lambdastack.store.rules import RuleRecord, SqliteRuleStore

DEFAULT_BUS = "default"
MAX_TARGETS = 5
PAGE = 100


@dataclass
class ActiveRule:
    record: RuleRecord
    arn: str
    targets: list[dict[str, Any]]
    pattern: Any = None  # Callable[[Any], bool] | None
    schedule: RateSchedule | CronSchedule | None = None


@dataclass
class _Cache:
    rules: list[ActiveRule] | None = None
    generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def rule_arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def _bus(params: dict[str, Any]) -> None:
    bus = params.get("EventBusName") or DEFAULT_BUS
    if bus not in (DEFAULT_BUS,) and not bus.endswith(":event-bus/default"):
        raise errors.RuleNotFound(f"Event bus {bus} does not exist.")


class RuleService:
    def __init__(self, store: SqliteRuleStore) -> None:
        self.store = store
        self._cache = _Cache()

    # ------------------------------------------------------------------ rules

    def put_rule(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        name = params["Name"]
        schedule, pattern = params.get("ScheduleExpression"), params.get("EventPattern")
        if not schedule and not pattern:
            raise errors.Validation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
        if schedule:
            try:
                parse_schedule(schedule)
            except InvalidSchedule as e:
                raise errors.Validation(str(e))
        if pattern:
            try:
                compile_pattern(orjson.loads(pattern))
            except (orjson.JSONDecodeError, InvalidPattern) as e:
                raise errors.InvalidEventPattern(f"Event pattern is not valid. Reason: {e}")
        arn = rule_arn(account, region, name)
        document: dict[str, Any] = {"Name": name, "Arn": arn, "State": params.get("State") or "ENABLED",
                                    "EventBusName": DEFAULT_BUS}
        for member in ("ScheduleExpression", "EventPattern", "Description", "RoleArn"):
            if params.get(member):
                document[member] = params[member]
        existing = self.store.get(account, region, name)
        self.store.put(RuleRecord(account, region, name, document, existing.created if existing else time.time()))
        self._changed()
        return {"RuleArn": arn}

    def describe_rule(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        return self._rule(account, region, params["Name"]).document

    def list_rules(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        rules = [r.document for r in self.store.rules(account, region)
                 if r.name.startswith(params.get("NamePrefix") or "")]
        return _page(rules, "Rules", params)

    def delete_rule(self, account: str, region: str, params: dict[str, Any]) -> None:
        _bus(params)
        name = params["Name"]
        if self.store.get(account, region, name) is None:
            return  # as EventBridge: deleting a rule that is not there succeeds
        if self.store.targets(account, region, name) and not params.get("Force"):
            raise errors.Validation("Rule can't be deleted since it has targets.")
        self.store.delete(account, region, name)
        self._changed()

    def set_state(self, account: str, region: str, params: dict[str, Any], state: str) -> None:
        _bus(params)
        record = self._rule(account, region, params["Name"])
        record.document["State"] = state
        self.store.put(record)
        self._changed()

    # ------------------------------------------------------------------ targets

    def put_targets(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        rule = self._rule(account, region, params["Rule"])
        existing = {t["Id"] for t in self.store.targets(account, region, rule.name)}
        failed: list[dict[str, Any]] = []
        for target in params["Targets"]:
            problem = _target_problem(target)
            if problem is None and len(existing | {target["Id"]}) > MAX_TARGETS:
                raise errors.EventsLimitExceeded("The requested resource exceeds the maximum number allowed.")
            if problem is not None:
                failed.append({"TargetId": target["Id"], "ErrorCode": "ValidationException", "ErrorMessage": problem})
                continue
            self.store.put_target(account, region, rule.name, target)
            existing.add(target["Id"])
        self._changed()
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def remove_targets(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        rule = self._rule(account, region, params["Rule"])
        failed = [{"TargetId": target_id, "ErrorCode": "ResourceNotFoundException",
                   "ErrorMessage": f"Target {target_id} does not exist."}
                  for target_id in params["Ids"] if not self.store.delete_target(account, region, rule.name,
                                                                                 target_id)]
        self._changed()
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def list_targets(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _bus(params)
        rule = self._rule(account, region, params["Rule"])
        return _page(self.store.targets(account, region, rule.name), "Targets", params)

    # ------------------------------------------------------------------ the delivery side

    def active(self) -> list[ActiveRule]:
        """Enabled rules with targets, patterns and schedules compiled; the same list until a change."""
        cache = self._cache
        found = cache.rules
        if found is not None:
            return found
        with cache.lock:
            generation = cache.generation
        rules: list[ActiveRule] = []
        for record in self.store.rules():
            if record.document.get("State") != "ENABLED":
                continue
            document = record.document
            rules.append(ActiveRule(
                record, document["Arn"], self.store.targets(record.account, record.region, record.name),
                pattern=compile_pattern(orjson.loads(document["EventPattern"])) if document.get("EventPattern")
                else None,
                schedule=parse_schedule(document["ScheduleExpression"]) if document.get("ScheduleExpression")
                else None,
            ))
        with cache.lock:
            if generation == cache.generation:
                cache.rules = rules
        return rules

    def fired(self, rule: ActiveRule, at: float) -> None:
        """A scheduled rule fired for time `at`: kept, so that a restart goes on from there."""
        self.store.fired(rule.record.account, rule.record.region, rule.record.name, at)
        rule.record.last_fired = at

    # ------------------------------------------------------------------ helpers

    def _rule(self, account: str, region: str, name: str) -> RuleRecord:
        record = self.store.get(account, region, name)
        if record is None:
            raise errors.RuleNotFound(f"Rule {name} does not exist on EventBus default.")
        return record

    def _changed(self) -> None:
        with self._cache.lock:
            self._cache.generation += 1
            self._cache.rules = None


def _target_problem(target: dict[str, Any]) -> str | None:
    arn = target["Arn"]
    parts = arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        return "lambdastack delivers to Lambda functions only"
    if target.get("Input") is not None:
        try:
            orjson.loads(target["Input"])
        except orjson.JSONDecodeError:
            return "Input is not valid JSON"
    if sum(1 for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None) > 1:
        return "Only one of Input, InputPath, or InputTransformer can be specified"
    return None


def _page(items: list[Any], key: str, params: dict[str, Any]) -> dict[str, Any]:
    start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
    size = params.get("Limit") or PAGE
    out: dict[str, Any] = {key: items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out
