"""Function states: Pending -> Active (or Failed), and LastUpdateStatus InProgress -> Successful.

Every create and update is accepted in the "in progress" state, and that is what the
response to the request says. Whether the work then completes before the response (zip
packages: the code is already checked and unpacked) or later (container images, which
the engine must fetch first) is decided by `States.synchronous`; asynchronous work
finishes with `States.complete`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.control.events import Events
from lambdastack.store.base import Store
from lambdastack.store.records import LATEST

Config = dict[str, Any]

CREATING = "The function is being created."
_REASONS = ("StateReason", "StateReasonCode", "LastUpdateStatusReason", "LastUpdateStatusReasonCode")


def creating(config: Config) -> Config:
    out = {k: v for k, v in config.items() if k not in _REASONS}
    out.update(
        State="Pending",
        StateReason=CREATING,
        StateReasonCode="Creating",
        LastUpdateStatus="InProgress",
        LastUpdateStatusReason=CREATING,
    )
    return out


def as_created(config: Config) -> Config:
    """What CreateFunction answers: the function Pending, and no update status yet (as AWS)."""
    return {k: v for k, v in config.items() if not k.startswith("LastUpdateStatus")}


def updating(config: Config) -> Config:
    out = {k: v for k, v in config.items() if k not in _REASONS}
    # AWS's words for any update in progress, recorded as such.
    out.update(State="Active", LastUpdateStatus="InProgress", LastUpdateStatusReason=CREATING,
               LastUpdateStatusReasonCode="Creating")
    return out


def settled(config: Config) -> Config:
    out = {k: v for k, v in config.items() if k not in _REASONS}
    out.update(State="Active", LastUpdateStatus="Successful")
    return out


def failed(config: Config, reason: str, code: str) -> Config:
    out = {k: v for k, v in config.items() if k not in _REASONS}
    if out.get("State") == "Pending":
        out.update(State="Failed", StateReason=reason, StateReasonCode=code)
    out.update(LastUpdateStatus="Failed", LastUpdateStatusReason=reason, LastUpdateStatusReasonCode=code)
    return out


def ensure_not_updating(config: Config, arn: str) -> None:
    """Lambda refuses a change while the previous one is still being applied."""
    if config.get("LastUpdateStatus") == "InProgress":
        raise errors.ResourceConflict(
            f"The operation cannot be performed at this time. An update is in progress for resource: {arn}"
        )


def _settles_at_once(config: Config) -> bool:
    """Zip packages are ready when stored; a published SnapStart version once the engine has
    initialized it (its snapshot), and an image once it is pulled."""
    if config.get("PackageType", "Zip") != "Zip":
        return False
    snapstart = (config.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"
    return not (snapstart and config.get("Version", LATEST) != LATEST)


class States:
    def __init__(
        self, store: Store, events: Events, synchronous: Callable[[Config], bool] = _settles_at_once
    ) -> None:
        self.store = store
        self.events = events
        self.synchronous = synchronous

    def stored(self, accepted: Config) -> Config:
        """What to store for a change accepted as `accepted` (Pending or InProgress)."""
        return settled(accepted) if self.synchronous(accepted) else accepted

    def complete(
        self,
        account: str,
        region: str,
        name: str,
        version: str,
        *,
        error: tuple[str, str] | None = None,
    ) -> None:
        """Finish an asynchronous create/update: Active/Successful, or Failed with (reason, code)."""
        with self.store.transaction() as tx:
            record = tx.get_version(account, region, name, version)
            if record is None:
                return
            record.config = settled(record.config) if error is None else failed(record.config, *error)
            tx.put_version(record)
        self.events.function_changed(account, region, name)
