"""EventBridge Scheduler (the `scheduler` client): CreateSchedule, GetSchedule, UpdateSchedule,
DeleteSchedule, ListSchedules, on the `default` schedule group, with Lambda targets.

Expressions: `at(yyyy-mm-ddThh:mm:ss)` (once), `rate(...)` and `cron(...)` as EventBridge reads
them (lambdastack.schedules), `at` and `cron` in `ScheduleExpressionTimezone` (an IANA zone,
UTC by default); `StartDate` and `EndDate` bound the firings; `FlexibleTimeWindow` FLEXIBLE
spreads each firing over its window; `ActionAfterCompletion` DELETE removes a schedule after
its last firing. `timing()` answers the delivery side's question: when is the next firing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lambdastack import errors
from lambdastack.schedules import CronSchedule, InvalidSchedule, RateSchedule, parse_schedule
from lambdastack.store.schedules import ScheduleExists, ScheduleRecord, SqliteScheduleStore

DEFAULT_GROUP = "default"
PAGE = 100
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
MAX_FLEXIBLE_MINUTES = 1440


def schedule_arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:scheduler:{region}:{account}:schedule/{DEFAULT_GROUP}/{name}"


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: its expression in its time zone, within its start and end dates."""

    expression: RateSchedule | CronSchedule | dt.datetime  # a datetime: `at()`, in UTC
    zone: ZoneInfo
    anchor: dt.datetime
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    flexible_s: int = 0
    key: str = ""  # spreads flexible firings (the schedule's ARN)

    def next_after(self, t: dt.datetime) -> dt.datetime | None:
        """The first nominal firing time strictly after `t` (UTC), or None if there is no more."""
        if self.start is not None and t < self.start:
            t = self.start - dt.timedelta(microseconds=1)
        found: dt.datetime | None
        if isinstance(self.expression, dt.datetime):
            found = self.expression if self.expression > t else None
        elif isinstance(self.expression, RateSchedule):
            found = self.expression.next_after(t, self.start or self.anchor)
        else:
            found = self._next_cron(self.expression, t)
        if found is not None and self.end is not None and found > self.end:
            return None
        return found

    def _next_cron(self, cron: CronSchedule, t: dt.datetime) -> dt.datetime | None:
        """Local wall-clock times in the zone: one that a spring-forward skips does not fire."""
        local = t.astimezone(self.zone).replace(tzinfo=dt.UTC)  # the wall clock, computed on as if UTC
        while True:
            nxt = cron.next_after(local)
            if nxt is None:
                return None
            wall = nxt.replace(tzinfo=None)
            aware = wall.replace(tzinfo=self.zone)
            if aware.astimezone(dt.UTC).astimezone(self.zone).replace(tzinfo=None) == wall:
                return aware.astimezone(dt.UTC)
            local = nxt

    def offset(self, nominal: dt.datetime) -> dt.timedelta:
        """Where in its flexible window a firing falls (the same every time it is asked)."""
        if not self.flexible_s:
            return dt.timedelta()
        digest = hashlib.sha256(f"{self.key}@{nominal.isoformat()}".encode()).digest()
        return dt.timedelta(seconds=int.from_bytes(digest[:4], "big") % self.flexible_s)


@dataclass
class ActiveSchedule:
    record: ScheduleRecord
    arn: str
    timing: Timing
    target: dict[str, Any]
    delete_after: bool


class ScheduleService:
    def __init__(self, store: SqliteScheduleStore) -> None:
        self.store = store
        self._active: list[ActiveSchedule] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ operations

    def create(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _group(params)
        name = params["Name"]
        now = time.time()
        document = self._document(account, region, params, created=now, modified=now)
        try:
            self.store.insert(ScheduleRecord(account, region, name, document, now))
        except ScheduleExists:
            raise errors.Conflict(f"Schedule {name} already exists.")
        self._changed()
        return {"ScheduleArn": document["Arn"]}

    def get(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _group(params)
        return dict(self._existing(account, region, params["Name"]).document)

    def update(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _group(params)
        record = self._existing(account, region, params["Name"])
        now = time.time()
        record.document = self._document(account, region, params, created=record.document["CreationDate"],
                                         modified=now)
        record.created = now
        if not self.store.replace(record):
            raise _not_found(params["Name"])
        self._changed()
        return {"ScheduleArn": record.document["Arn"]}

    def delete(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        _group(params)
        if not self.store.delete(account, region, params["Name"]):
            raise _not_found(params["Name"])
        self._changed()
        return {}

    def list_schedules(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("GroupName") not in (None, DEFAULT_GROUP):
            return {"Schedules": []}
        records = [r for r in self.store.all(account, region)
                   if r.name.startswith(params.get("NamePrefix") or "")
                   and (not params.get("State") or r.document["State"] == params["State"])]
        start = int(params["NextToken"]) if str(params.get("NextToken") or "").isdigit() else 0
        size = min(int(params.get("MaxResults") or PAGE), PAGE)
        page = records[start:start + size]
        out: dict[str, Any] = {"Schedules": [{
            "Arn": r.document["Arn"], "Name": r.name, "GroupName": DEFAULT_GROUP, "State": r.document["State"],
            "CreationDate": r.document["CreationDate"], "LastModificationDate": r.document["LastModificationDate"],
            "Target": {"Arn": r.document["Target"]["Arn"]},
        } for r in page]}
        if start + size < len(records):
            out["NextToken"] = str(start + size)
        return out

    # ------------------------------------------------------------------ the delivery side

    def active(self) -> list[ActiveSchedule]:
        """The enabled schedules with their timings, cached until a schedule changes."""
        with self._lock:
            if self._active is not None:
                return self._active
        found = [_active(r) for r in self.store.all() if r.document["State"] == "ENABLED"]
        with self._lock:
            self._active = found
        return found

    def fired(self, schedule: ActiveSchedule, at: float) -> None:
        self.store.fired(schedule.record.account, schedule.record.region, schedule.record.name, at)
        schedule.record.last_fired = at

    def completed(self, schedule: ActiveSchedule) -> None:
        """No firing is left: ActionAfterCompletion DELETE removes the schedule."""
        if schedule.delete_after:
            self.store.delete(schedule.record.account, schedule.record.region, schedule.record.name)
            self._changed()

    # ------------------------------------------------------------------ helpers

    def _existing(self, account: str, region: str, name: str) -> ScheduleRecord:
        record = self.store.get(account, region, name)
        if record is None:
            raise _not_found(name)
        return record

    def _changed(self) -> None:
        with self._lock:
            self._active = None

    def _document(self, account: str, region: str, params: dict[str, Any], created: float,
                  modified: float) -> dict[str, Any]:
        name = params["Name"]
        expression = params["ScheduleExpression"]
        zone_name = params.get("ScheduleExpressionTimezone") or "UTC"
        _zone(zone_name)
        _expression(expression, zone_name)
        window = dict(params["FlexibleTimeWindow"])
        if window.get("Mode") == "FLEXIBLE":
            minutes = window.get("MaximumWindowInMinutes")
            if not isinstance(minutes, int) or not 1 <= minutes <= MAX_FLEXIBLE_MINUTES:
                raise errors.Validation("MaximumWindowInMinutes must be between 1 and 1440 for a FLEXIBLE window.")
        elif "MaximumWindowInMinutes" in window:
            raise errors.Validation("MaximumWindowInMinutes can only be specified for a FLEXIBLE window.")
        target = dict(params["Target"])
        parts = str(target["Arn"]).split(":")
        if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
            raise errors.Validation("lambdastack's schedules invoke Lambda functions: the target must be a function "
                                    "ARN (arn:aws:lambda:<region>:<account>:function:<name>).")
        for member in ("EcsParameters", "EventBridgeParameters", "KinesisParameters", "SageMakerPipelineParameters",
                       "SqsParameters"):
            if member in target:
                raise errors.Validation(f"{member} does not apply to a Lambda target.")
        start, end = params.get("StartDate"), params.get("EndDate")
        if start is not None and end is not None and _epoch(end) <= _epoch(start):
            raise errors.Validation("The EndDate must be after the StartDate.")
        document: dict[str, Any] = {
            "Arn": schedule_arn(account, region, name), "Name": name, "GroupName": DEFAULT_GROUP,
            "ScheduleExpression": expression, "ScheduleExpressionTimezone": zone_name,
            "FlexibleTimeWindow": window, "Target": target, "State": params.get("State") or "ENABLED",
            "ActionAfterCompletion": params.get("ActionAfterCompletion") or "NONE",
            "CreationDate": created, "LastModificationDate": modified,
        }
        for member in ("Description", "KmsKeyArn"):
            if params.get(member) is not None:
                document[member] = params[member]
        for member in ("StartDate", "EndDate"):
            if params.get(member) is not None:
                document[member] = _epoch(params[member])
        return document


def _active(record: ScheduleRecord) -> ActiveSchedule:
    document = record.document
    zone = _zone(document["ScheduleExpressionTimezone"])
    window = document["FlexibleTimeWindow"]
    timing = Timing(
        expression=_expression(document["ScheduleExpression"], document["ScheduleExpressionTimezone"]),
        zone=zone, anchor=dt.datetime.fromtimestamp(record.created, dt.UTC),
        start=_utc(document.get("StartDate")), end=_utc(document.get("EndDate")),
        flexible_s=60 * int(window.get("MaximumWindowInMinutes") or 0) if window.get("Mode") == "FLEXIBLE" else 0,
        key=document["Arn"],
    )
    return ActiveSchedule(record, document["Arn"], timing, document["Target"],
                          document.get("ActionAfterCompletion") == "DELETE")


def _expression(text: str, zone_name: str) -> RateSchedule | CronSchedule | dt.datetime:
    at = _AT.fullmatch(text)
    if at is not None:
        try:
            local = dt.datetime.fromisoformat(at.group(1))
        except ValueError:
            raise errors.Validation("Invalid Schedule Expression at(...).")
        return local.replace(tzinfo=_zone(zone_name)).astimezone(dt.UTC)
    try:
        return parse_schedule(text)
    except InvalidSchedule:
        raise errors.Validation(f"Invalid Schedule Expression {text}.")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.Validation(f"Invalid ScheduleExpressionTimezone {name}.")


def _group(params: dict[str, Any]) -> None:
    group = params.get("GroupName")
    if group not in (None, DEFAULT_GROUP):
        raise errors.ResourceNotFound(f"Schedule group {group} does not exist.")


def _not_found(name: str) -> errors.LambdaError:
    return errors.ResourceNotFound(f"Schedule {name} does not exist.")


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _utc(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)
