"""The CloudWatch Logs operations over the functions' stored logs.

A log group is either a function's (`/aws/lambda/<name>`, or the group its
`LoggingConfig.LogGroup` names; several functions may share one), made when the function
first logs, or one created with CreateLogGroup. Once seen, a group is kept (with its
creation time and retention) in `<logs>/<account>/<region>/.groups.json` until
DeleteLogGroup, as on AWS, where a group outlives its events and its function.

Every method is synchronous (files): the API runs them off the event loop.
"""

from __future__ import annotations

import heapq
import os
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from lambdastack import errors
from lambdastack.observe.cloudwatch_logs import storage, tokens, writes
from lambdastack.observe.cloudwatch_logs.patterns import PatternError, compile_pattern, prefilter
from lambdastack.observe.logs import LogStore

Params = dict[str, Any]
# The configuration of a function's $LATEST (None: no such function).
ConfigLookup = Callable[[str, str, str], "dict[str, Any] | None"]

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
DAY_MS = 86_400_000
RESPONSE_BYTES = 1_048_576  # GetLogEvents and FilterLogEvents answer at most 1 MB of events
EVENT_OVERHEAD = 26  # what CloudWatch Logs counts per event besides its message
DESCRIBE_LIMIT = 50
EVENTS_LIMIT = 10_000

GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
GROUP_EXISTS = "The specified log group already exists"
STREAM_EXISTS = "The specified log stream already exists"
BAD_TOKEN = "The specified nextToken is invalid."


@dataclass
class Group:
    name: str
    meta: dict[str, Any]
    functions: list[str] = field(default_factory=list)


class LogsService:
    def __init__(self, logs: LogStore, config_of: ConfigLookup, clock: Callable[[], float] = time.time) -> None:
        self.logs = logs
        self.config_of = config_of
        self.clock = clock
        self._lock = threading.RLock()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ groups

    def _load_meta(self, account: str, region: str) -> dict[str, dict[str, Any]]:
        try:
            with open(self.logs.root / account / region / ".groups.json", "rb") as f:
                loaded: dict[str, dict[str, Any]] = orjson.loads(f.read())
                return loaded
        except FileNotFoundError:
            return {}

    def _save_meta(self, account: str, region: str, meta: dict[str, dict[str, Any]]) -> None:
        path = self.logs.root / account / region / ".groups.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(".groups.json.new")
        temporary.write_bytes(orjson.dumps(meta, option=orjson.OPT_SORT_KEYS))
        os.replace(temporary, path)

    def group_of_function(self, account: str, region: str, function: str, known: dict[str, str] | None = None) -> str:
        """The group a function logs to; once the function is deleted, the group it last logged to
        (`known`: function -> group, as kept with the groups)."""
        config = self.config_of(account, region, function)
        if config is None and known and function in known:
            return known[function]
        return str(((config or {}).get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{function}")

    def groups(self, account: str, region: str) -> dict[str, Group]:
        """Every log group of the account in the region, by name."""
        with self._lock:
            meta = self._load_meta(account, region)
            found: dict[str, Group] = {name: Group(name, info) for name, info in meta.items()}
            known = {function: name for name, info in meta.items() for function in info.get("functions", ())}
            changed = False
            for function in storage.function_folders(self.logs, account, region):
                streams = storage.stream_files(self.logs, account, region, function)
                if not streams:
                    continue
                name = self.group_of_function(account, region, function, known)
                if name not in found:
                    firsts = [s.first for s in map(storage.summary, (f.path for f in streams)) if s is not None]
                    info: dict[str, Any] = {"creationTime": min(firsts) if firsts else self.now_ms()}
                    meta[name] = info
                    found[name] = Group(name, info)
                    changed = True
                found[name].functions.append(function)
                if known.get(function) != name:
                    if function in known and known[function] in meta:
                        meta[known[function]]["functions"].remove(function)
                    meta[name].setdefault("functions", []).append(function)
                    known[function] = name
                    changed = True
            if changed:
                self._save_meta(account, region, meta)
            return found

    def _group(self, account: str, region: str, params: Params) -> Group:
        name = params.get("logGroupName")
        identifier = params.get("logGroupIdentifier")
        if name and identifier:
            raise errors.Validation("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        name = name or _name_of(identifier)
        if not name:
            raise errors.InvalidParameter("Should provide either name or ARN of the log group.")
        group = self.groups(account, region).get(name)
        if group is None:
            raise errors.LogsResourceNotFound(GROUP_NOT_FOUND)
        self._expire(account, region, group)
        return group

    def _streams(self, account: str, region: str, group: Group) -> dict[str, storage.StreamFile]:
        out: dict[str, storage.StreamFile] = {}
        for function in [*group.functions, _own_folder(group.name)]:
            for stream in storage.stream_files(self.logs, account, region, function):
                out.setdefault(stream.name, stream)
        return out

    def describe_log_groups(self, account: str, region: str, params: Params) -> Params:
        prefix = params.get("logGroupNamePrefix")
        pattern = params.get("logGroupNamePattern")
        if prefix and pattern:
            raise errors.InvalidParameter(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        wanted = {_name_of(i) for i in params.get("logGroupIdentifiers") or ()}
        limit = params.get("limit") or DESCRIBE_LIMIT
        after = self._token(params)
        groups = self.groups(account, region)
        names = sorted(
            name for name in groups
            if (not prefix or name.startswith(prefix))
            and (not pattern or pattern.lower() in name.lower())
            and (not wanted or name in wanted)
            and (after is None or name > after)
        )
        page = names[:limit]
        # AWS's answer to a search by pattern leaves out the stored bytes and the deletion protection.
        out: Params = {"logGroups": [self._describe_group(account, region, groups[name], brief=bool(pattern))
                                     for name in page]}
        if len(names) > limit:
            out["nextToken"] = tokens.opaque_token(page[-1])
        return out

    def _describe_group(self, account: str, region: str, group: Group, brief: bool = False) -> Params:
        stored = 0
        for stream in self._streams(account, region, group).values():
            try:
                stored += stream.path.stat().st_size
            except FileNotFoundError:
                pass
        arn = f"arn:aws:logs:{region}:{account}:log-group:{group.name}"
        out: Params = {"logGroupName": group.name, "creationTime": group.meta["creationTime"]}
        if group.meta.get("retentionInDays"):
            out["retentionInDays"] = group.meta["retentionInDays"]
        out.update({"metricFilterCount": 0, "arn": arn + ":*", "storedBytes": stored, "logGroupClass": "STANDARD",
                    "logGroupArn": arn, "deletionProtectionEnabled": False})
        if brief:
            del out["storedBytes"], out["deletionProtectionEnabled"]
        return out

    def create_log_group(self, account: str, region: str, params: Params) -> None:
        name = params["logGroupName"]
        with self._lock:
            if name in self.groups(account, region):
                raise errors.ResourceAlreadyExists(GROUP_EXISTS)
            meta = self._load_meta(account, region)
            meta[name] = {"creationTime": self.now_ms()}
            self._save_meta(account, region, meta)

    def delete_log_group(self, account: str, region: str, params: Params) -> None:
        name = params["logGroupName"]
        with self._lock:
            group = self.groups(account, region).get(name)
            if group is None:
                raise errors.LogsResourceNotFound(GROUP_NOT_FOUND)
            for function in [*group.functions, _own_folder(group.name)]:
                with self.logs.lock:
                    self.logs.forget(account, region, function)
                    shutil.rmtree(self.logs.root / account / region / function, ignore_errors=True)
            meta = self._load_meta(account, region)
            meta.pop(name, None)
            self._save_meta(account, region, meta)

    def put_retention_policy(self, account: str, region: str, params: Params) -> None:
        days = params["retentionInDays"]
        if days not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise errors.InvalidParameter(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{allowed}]")
        self._set_retention(account, region, params["logGroupName"], days)
        group = self.groups(account, region)[params["logGroupName"]]
        self._expire(account, region, group)

    def delete_retention_policy(self, account: str, region: str, params: Params) -> None:
        self._set_retention(account, region, params["logGroupName"], None)

    def _set_retention(self, account: str, region: str, name: str, days: int | None) -> None:
        with self._lock:
            if name not in self.groups(account, region):
                raise errors.LogsResourceNotFound(GROUP_NOT_FOUND)
            meta = self._load_meta(account, region)
            if days is None:
                meta[name].pop("retentionInDays", None)
            else:
                meta[name]["retentionInDays"] = days
            self._save_meta(account, region, meta)

    # ------------------------------------------------------------------ retention

    def _expire(self, account: str, region: str, group: Group) -> int:
        days = group.meta.get("retentionInDays")
        if not days:
            return 0
        cutoff = self.now_ms() - int(days) * DAY_MS
        return sum(storage.expire(self.logs, account, region, stream, cutoff)
                   for stream in self._streams(account, region, group).values())

    def sweep(self) -> int:
        """Delete every event older than its group's retention, in every account and region."""
        deleted = 0
        root = self.logs.root
        for account in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else ():
            for region in sorted(p.name for p in (root / account).iterdir() if p.is_dir()):
                for group in self.groups(account, region).values():
                    deleted += self._expire(account, region, group)
        return deleted

    # ------------------------------------------------------------------ streams and events

    def describe_log_streams(self, account: str, region: str, params: Params) -> Params:
        order = params.get("orderBy") or "LogStreamName"
        prefix = params.get("logStreamNamePrefix")
        if order == "LastEventTime" and prefix:
            raise errors.InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        group = self._group(account, region, params)
        descending = bool(params.get("descending"))
        limit = params.get("limit") or DESCRIBE_LIMIT
        after = self._token(params)
        rows: list[tuple[Any, storage.StreamFile, storage.Summary]] = []
        for name, stream in self._streams(account, region, group).items():
            if prefix and not name.startswith(prefix):
                continue
            found = storage.summary(stream.path)
            if found is None:  # created by CreateLogStream, no events yet
                created = (group.meta.get("streams") or {}).get(name)
                if created is None:
                    continue
                found = storage.Summary(created, 0, 0)
            key = [found.last, name] if order == "LastEventTime" else [name]
            rows.append((key, stream, found))
        rows.sort(key=lambda row: row[0], reverse=descending)
        if after is not None:
            rows = [row for row in rows if (row[0] < after if descending else row[0] > after)]
        page = rows[:limit]
        arn = f"arn:aws:logs:{region}:{account}:log-group:{group.name}:log-stream:"
        out: Params = {"logStreams": [_describe_stream(arn, stream, found) for _, stream, found in page]}
        if len(rows) > limit:
            out["nextToken"] = tokens.opaque_token(page[-1][0])
        return out

    def get_log_events(self, account: str, region: str, params: Params) -> Params:
        group = self._group(account, region, params)
        stream = self._streams(account, region, group).get(params["logStreamName"])
        if stream is None:
            raise errors.LogsResourceNotFound(STREAM_NOT_FOUND)
        start, end = params.get("startTime"), params.get("endTime")
        limit = params.get("limit") or EVENTS_LIMIT
        every = list(storage.events(stream.path, start, end))
        token = params.get("nextToken")
        if token:
            try:
                direction, at = tokens.parse_sequence_token(token)
            except tokens.TokenError:
                raise errors.InvalidParameter(BAD_TOKEN) from None
            if direction == "f":
                chosen = _head([e for e in every if tokens.position(e.timestamp, e.rank) >= at], limit)
            else:
                chosen = _tail([e for e in every if tokens.position(e.timestamp, e.rank) < at], limit)
        else:
            direction, at = ("f", tokens.position(start or 0, 0)) if params.get("startFromHead") else (
                "b", tokens.position(end, 0) if end is not None else _after(every))
            chosen = _head(every, limit) if params.get("startFromHead") else _tail(every, limit)
        if chosen:
            forward = tokens.position(chosen[-1].timestamp, chosen[-1].rank) + 1
            backward = tokens.position(chosen[0].timestamp, chosen[0].rank)
        else:
            forward = backward = at
        return {
            "events": [{"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
                       for e in chosen],
            "nextForwardToken": token if token and not chosen and direction == "f" else
            tokens.sequence_token("f", forward),
            "nextBackwardToken": token if token and not chosen and direction == "b" else
            tokens.sequence_token("b", backward),
        }

    def filter_log_events(self, account: str, region: str, params: Params) -> Params:
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names and prefix:
            raise errors.InvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        try:
            matches = compile_pattern(params.get("filterPattern"))
            needles = prefilter(params.get("filterPattern"))
        except PatternError:
            raise errors.InvalidParameter("Invalid filter pattern") from None
        group = self._group(account, region, params)
        start, end = params.get("startTime"), params.get("endTime")
        limit = params.get("limit") or EVENTS_LIMIT
        after = self._token(params)
        resume: tuple[Any, ...] | None = tuple(after) if after is not None else None
        streams = [s for name, s in sorted(self._streams(account, region, group).items())
                   if (not names or name in names) and (not prefix or name.startswith(prefix))]

        def matching(stream: storage.StreamFile) -> Iterator[tuple[int, str, int, str]]:
            found = storage.summary(stream.path)
            if found is None or (start is not None and found.last < start) or (
                    end is not None and found.first >= end) or (resume is not None and found.last < resume[0]):
                return
            low = max(start or 0, resume[0] if resume is not None else 0)
            for event in storage.scan(stream.path, low, end, needles.every, needles.some):
                key = (event.timestamp, stream.name, event.rank)
                if resume is not None and key <= resume:
                    continue
                if matches(event.message):
                    yield (*key, event.message)

        out: list[Params] = []
        size = 0
        more = False
        for timestamp, name, rank, message in heapq.merge(*(matching(s) for s in streams)):
            size += len(message.encode()) + EVENT_OVERHEAD
            if len(out) >= limit or (out and size > RESPONSE_BYTES):
                more = True
                break
            out.append({"logStreamName": name, "timestamp": timestamp, "message": message,
                        "ingestionTime": timestamp,
                        "eventId": tokens.event_id(timestamp, zlib.crc32(name.encode()), rank)})
        result: Params = {"events": out, "searchedLogStreams": []}
        if more:
            last = out[-1]
            result["nextToken"] = tokens.opaque_token(
                [last["timestamp"], last["logStreamName"], int(last["eventId"][-26:])])
        return result

    def create_log_stream(self, account: str, region: str, params: Params) -> None:
        name = params["logStreamName"]
        writes.check_stream_name(name)
        with self._lock:
            group = self._group(account, region, params)
            if name in self._streams(account, region, group):
                raise errors.ResourceAlreadyExists(STREAM_EXISTS)
            path = self.logs.path(account, region, _own_folder(group.name), name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            meta = self._load_meta(account, region)
            meta[group.name].setdefault("streams", {})[name] = self.now_ms()
            self._save_meta(account, region, meta)

    def put_log_events(self, account: str, region: str, params: Params) -> Params:
        events = params["logEvents"]
        writes.check_batch(events)
        group = self._group(account, region, params)
        stream = self._streams(account, region, group).get(params["logStreamName"])
        if stream is None:
            raise errors.LogsResourceNotFound(STREAM_NOT_FOUND)
        kept, rejected = writes.triage(events, self.now_ms(), group.meta.get("retentionInDays"))
        writes.add(self.logs, account, region, stream, kept)
        out: Params = {"nextSequenceToken": f"{self.now_ms():056d}"}
        if rejected:
            out["rejectedLogEventsInfo"] = rejected
        return out

    def _token(self, params: Params) -> Any:
        token = params.get("nextToken")
        if not token:
            return None
        try:
            return tokens.parse_opaque_token(token)
        except tokens.TokenError:
            raise errors.InvalidParameter(BAD_TOKEN) from None


def _own_folder(group: str) -> str:
    """Where the streams made by CreateLogStream in a group live (apart from functions' folders)."""
    return ".groups/" + quote(group, safe="")


def _describe_stream(arn: str, stream: storage.StreamFile, found: storage.Summary) -> Params:
    out: Params = {"logStreamName": stream.name, "creationTime": found.first}
    if found.size:
        out.update({"firstEventTimestamp": found.first, "lastEventTimestamp": found.last,
                    "lastIngestionTime": found.last})
    out.update({"arn": arn + stream.name, "storedBytes": 0})
    return out


def _name_of(identifier: str | None) -> str | None:
    """A log group's name from its name or its ARN (`arn:aws:logs:…:log-group:NAME[:*]`)."""
    if not identifier or not identifier.startswith("arn:"):
        return identifier
    name = identifier.split(":log-group:", 1)[-1]
    return name[:-2] if name.endswith(":*") else name


def _head(events: list[storage.Event], limit: int) -> list[storage.Event]:
    out: list[storage.Event] = []
    size = 0
    for event in events[:limit]:
        size += len(event.message.encode()) + EVENT_OVERHEAD
        if out and size > RESPONSE_BYTES:
            break
        out.append(event)
    return out


def _tail(events: list[storage.Event], limit: int) -> list[storage.Event]:
    return list(reversed(_head(list(reversed(events[-limit:])), limit)))


def _after(events: list[storage.Event]) -> int:
    if not events:
        return 0
    return tokens.position(events[-1].timestamp, events[-1].rank) + 1
