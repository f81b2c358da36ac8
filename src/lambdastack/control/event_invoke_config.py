"""Asynchronous invocation settings: retries, maximum event age and destinations, per qualifier.

Put replaces the whole configuration, Update changes only the members it is given. The
numeric ranges are the model's and are checked by the API layer; this module checks the
destinations and whether the qualifier exists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.control import pagination
from lambdastack.control.common import Deps, function_not_found, require_function, resolve
from lambdastack.control.names import FunctionRef, function_arn
from lambdastack.invoke.destination_arn import parse_destination
from lambdastack.store.event_invoke_configs import EventInvokeConfigRecord, EventInvokeConfigStore, FunctionGone
from lambdastack.store.records import LATEST

log = logging.getLogger("lambdastack.control.event_invoke_config")

Listener = Callable[[str, str, str], None]

DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_S = 21_600
_SETTINGS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


def _no_function(ref: FunctionRef, qualifier: str) -> errors.LambdaError:
    return errors.ResourceNotFound("The function doesn't exist.")


_NO_FUNCTION = _no_function  # what Put, Update and List answer for a function or qualifier that is not there


def _require_settings(config: dict[str, Any], given: dict[str, Any]) -> None:
    destinations = config.get("DestinationConfig") or {}
    has_destination = any((destinations.get(side) or {}).get("Destination") for side in ("OnSuccess", "OnFailure"))
    if not given or ("MaximumRetryAttempts" not in given and "MaximumEventAgeInSeconds" not in given
                     and not has_destination and "DestinationConfig" not in given):
        raise errors.InvalidParameterValue("You must specify at least one of error handling or destination setting.")


def _java_config(destinations: dict[str, Any]) -> str:
    """`DestinationConfig(onSuccess=OnSuccess(destination=...), onFailure=null)`, as AWS prints it."""
    parts = []
    for side, member in (("OnSuccess", "onSuccess"), ("OnFailure", "onFailure")):
        target = (destinations.get(side) or {}).get("Destination")
        parts.append(f"{member}={side}(destination={target})" if target else f"{member}=null")
    return f"DestinationConfig({', '.join(parts)})"


def render(record: EventInvokeConfigRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LastModified": record.last_modified,
        "FunctionArn": function_arn(record.account, record.region, record.function_name, record.qualifier),
    }
    for member in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if member in record.config:
            out[member] = record.config[member]
    destinations = record.config.get("DestinationConfig") or {}
    out["DestinationConfig"] = {
        "OnSuccess": dict(destinations.get("OnSuccess") or {}),
        "OnFailure": dict(destinations.get("OnFailure") or {}),
    }
    return out


class EventInvokeConfigService:
    def __init__(self, deps: Deps, configs: EventInvokeConfigStore) -> None:
        self.deps = deps
        self.configs = configs
        self._listeners: list[Listener] = []

    def on_change(self, listener: Listener) -> None:
        """Call `listener(account, region, name)` after a function's settings changed."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ operations

    def put(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        settings = {k: params[k] for k in _SETTINGS if k in params}
        _require_settings(settings, settings)  # AWS checks this before it looks the function up
        qualifier = self._existing_qualifier(ref, missing=_NO_FUNCTION)
        config = self._checked(ref, settings)
        return self._save(ref, qualifier, config)

    def update(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        qualifier = self._existing_qualifier(ref, missing=_NO_FUNCTION)
        current = self.configs.get(ref.account, ref.region, ref.name, qualifier)
        if current is None:
            raise self._none(ref, qualifier)
        changes = {k: params[k] for k in _SETTINGS if k in params}
        config = dict(current.config)
        if "DestinationConfig" in changes:
            merged = dict(config.get("DestinationConfig") or {})
            for side in ("OnSuccess", "OnFailure"):
                if side in changes["DestinationConfig"]:
                    merged[side] = changes["DestinationConfig"][side]
            changes["DestinationConfig"] = merged
        config.update(changes)
        return self._save(ref, qualifier, self._checked(ref, config, given=changes))

    def get(self, ref: FunctionRef) -> dict[str, Any]:
        qualifier = self._existing_qualifier(ref, missing=self._none)
        record = self.configs.get(ref.account, ref.region, ref.name, qualifier)
        if record is None:
            raise self._none(ref, qualifier)
        return render(record)

    def delete(self, ref: FunctionRef) -> None:
        qualifier = self._existing_qualifier(ref, missing=self._none)
        if not self.configs.delete(ref.account, ref.region, ref.name, qualifier):
            raise self._none(ref, qualifier)
        self._changed(ref)

    def list(self, ref: FunctionRef, marker: str | None, max_items: int | None) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            if tx.get_function(ref.account, ref.region, ref.name) is None:
                raise _NO_FUNCTION(ref, LATEST)
        page, next_marker = pagination.page_by_qualifier(self.configs.list(ref.account, ref.region, ref.name), marker,
                                                         max_items)
        out: dict[str, Any] = {"FunctionEventInvokeConfigs": [render(r) for r in page]}
        if next_marker is not None:
            out["NextMarker"] = next_marker
        return out

    # ------------------------------------------------------------------ helpers

    def _existing_qualifier(self, ref: FunctionRef, missing: Callable[[FunctionRef, str], errors.LambdaError]) -> str:
        """The qualifier the request names ($LATEST when none); `missing(ref, qualifier)` unless it exists."""
        qualifier = ref.qualifier or LATEST
        with self.deps.store.read() as tx:
            try:
                require_function(tx, ref)
                resolve(tx, ref)
            except errors.LambdaError as e:
                if e.code != "ResourceNotFoundException":
                    raise
                raise missing(ref, qualifier)
        return qualifier

    @staticmethod
    def _none(ref: FunctionRef, qualifier: str) -> errors.LambdaError:
        arn = function_arn(ref.account, ref.region, ref.name, qualifier)
        return errors.ResourceNotFound(f"The function {arn} doesn't have an EventInvokeConfig")

    def _checked(self, ref: FunctionRef, config: dict[str, Any], given: dict[str, Any] | None = None) -> dict[str, Any]:
        given = config if given is None else given
        destinations = config.get("DestinationConfig") or {}
        _require_settings(config, given)
        cleaned: dict[str, Any] = {k: config[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
                                   if config.get(k) is not None}
        kept: dict[str, Any] = {}
        for side in ("OnSuccess", "OnFailure"):
            target = (destinations.get(side) or {}).get("Destination")
            if not target:
                continue
            self._check_destination(ref, side, target, destinations)
            kept[side] = {"Destination": target}
        if kept:
            cleaned["DestinationConfig"] = kept
        return cleaned

    def _check_destination(self, ref: FunctionRef, side: str, target: str, destinations: dict[str, Any]) -> None:
        parsed = parse_destination(target)
        if parsed is None:
            # AWS prints the whole configuration, Java-style.
            config = _java_config(destinations)
            raise errors.InvalidParameterValue(f"The provided destination config {config} is invalid.")
        if parsed.service == "s3" and side == "OnSuccess":
            raise errors.InvalidParameterValue(
                f"The destination ARN {target} is invalid: Amazon S3 buckets are supported only as OnFailure "
                "destinations."
            )
        if parsed.service == "lambda":
            name, _ = parsed.function
            if (parsed.account, parsed.region, name) == (ref.account, ref.region, ref.name):
                raise errors.InvalidParameterValue("You can't specify the function as a destination for itself.")
            with self.deps.store.read() as tx:
                if tx.get_function(parsed.account, parsed.region, name) is None:
                    raise errors.InvalidParameterValue(f"The destination ARN {target} is invalid.")

    def _save(self, ref: FunctionRef, qualifier: str, config: dict[str, Any]) -> dict[str, Any]:
        record = EventInvokeConfigRecord(ref.account, ref.region, ref.name, qualifier, config, round(time.time(), 3))
        try:
            self.configs.put(record)
        except FunctionGone:
            raise function_not_found(ref)
        self._changed(ref)
        return render(record)

    def _changed(self, ref: FunctionRef) -> None:
        for listener in list(self._listeners):
            try:
                listener(ref.account, ref.region, ref.name)
            except Exception:
                log.exception("event invoke config listener failed for %s", ref.name)
