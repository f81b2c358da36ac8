"""Published versions: immutable snapshots of $LATEST, numbered 1, 2, ... and never reused."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.control import configuration, pagination, states
from lambdastack.control.common import Deps, check_revision, require_function, require_latest
from lambdastack.control.names import FunctionRef
from lambdastack.store.base import Transaction
from lambdastack.store.records import FunctionRecord, VersionRecord


def publish_in(
    tx: Transaction, deps: Deps, fn: FunctionRecord, latest: VersionRecord, description: str | None
) -> VersionRecord:
    """Publish $LATEST inside `tx`, or hand back the newest version if nothing changed since."""
    fingerprint = configuration.fingerprint(latest.config)
    published = tx.list_versions(fn.account, fn.region, fn.name, after=0)
    if published and published[-1].fingerprint == fingerprint:
        return published[-1]
    number = str(fn.last_version + 1)
    snapshot = configuration.as_version(latest.config, fn.account, fn.region, number, description)
    record = VersionRecord(
        account=fn.account,
        region=fn.region,
        function_name=fn.name,
        version=number,
        config=deps.states.stored(states.creating(snapshot)),
        code_sha256_hex=latest.code_sha256_hex,
        fingerprint=fingerprint,
    )
    tx.put_version(record)
    fn.last_version += 1
    tx.put_function(fn)
    return record


class VersionService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def publish(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("PublishTo"):
            raise errors.InvalidParameterValue("Publishing to LATEST_PUBLISHED is not supported by lambdastack.")
        with self.deps.store.transaction() as tx:
            fn = require_function(tx, ref)
            latest = require_latest(tx, ref)
            code_sha = params.get("CodeSha256")
            if code_sha is not None and code_sha != latest.config["CodeSha256"]:
                raise errors.InvalidParameterValue(
                    f"CodeSHA256 ({code_sha}) is different from current CodeSHA256 in $LATEST "
                    f"({latest.config['CodeSha256']}). Please try again with the CodeSHA256 in $LATEST."
                )
            check_revision(params.get("RevisionId"), latest.config["RevisionId"])
            states.ensure_not_updating(latest.config, ref.arn)
            before = fn.last_version
            record = publish_in(tx, self.deps, fn, latest, params.get("Description"))
        if fn.last_version != before:
            self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return configuration.render(record.config, record.version)

    def list(self, ref: FunctionRef, marker: str | None, max_items: int | None) -> dict[str, Any]:
        after = pagination.decode(marker, pagination.is_int)
        size = pagination.page_size(max_items)
        with self.deps.store.read() as tx:
            require_function(tx, ref)
            rows = tx.list_versions(ref.account, ref.region, ref.name, after=after, limit=size + 1)
        page = rows[:size]
        out: dict[str, Any] = {"Versions": [configuration.render_listed(r.config, r.version) for r in page]}
        if len(rows) > size:
            out["NextMarker"] = pagination.encode(page[-1].number)
        return out
