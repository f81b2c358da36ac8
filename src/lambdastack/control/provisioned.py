"""Provisioned concurrency configurations: environments kept initialized for a version or alias.

Control stores what was asked for; the engine makes and keeps the environments and
reports how many are ready (`Status`, `Allocated...`, `Available...`) through a status
callback, since only it knows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.control import limits
from lambdastack.control.common import Deps, function_not_found, require_function, require_qualifier
from lambdastack.control.configuration import timestamp
from lambdastack.control.names import FunctionRef, function_arn, is_version
from lambdastack.control.pagination import decode, encode, is_str, page_size
from lambdastack.store.records import LATEST, ProvisionedConcurrencyRecord

# (account, region, function, qualifier, requested) -> (allocated and ready, last error or None)
StatusOf = Callable[[str, str, str, str, int], tuple[int, str | None]]

NOT_FOUND = "No Provisioned Concurrency Config found for this function"
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."


class ProvisionedConcurrencyService:
    def __init__(self, deps: Deps, status_of: StatusOf | None = None) -> None:
        self.deps = deps
        self.status_of: StatusOf = status_of or (lambda *_: (0, None))

    def put(self, ref: FunctionRef, qualifier: str, requested: int) -> dict[str, Any]:
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(UNPUBLISHED)
        with self.deps.store.transaction() as tx:
            require_qualifier(tx, ref, qualifier)
            fn = require_function(tx, ref)
            version = self._target_version(tx, ref, qualifier)
            others = [c for c in tx.list_provisioned(ref.account, ref.region, ref.name) if c.qualifier != qualifier]
            for other in others:
                if self._target_version(tx, ref, other.qualifier) == version:
                    raise errors.ResourceConflict(
                        f"Alias can't be used for Provisioned Concurrency configuration on an already Provisioned "
                        f"version: {function_arn(ref.account, ref.region, ref.name, other.qualifier)}"
                    )
            total = requested + sum(c.requested for c in others)
            if fn.reserved_concurrency is not None:
                if total > fn.reserved_concurrency:
                    raise errors.InvalidParameterValue(
                        f"Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution "
                        f"for function: {fn.reserved_concurrency}"
                    )
            else:
                unreserved = self.deps.account_concurrency - tx.reserved_concurrency_total(ref.account, ref.region)
                if total > unreserved - limits.UNRESERVED_FLOOR:
                    raise errors.InvalidParameterValue(
                        "Specified ConcurrentExecutions for function is greater than account's unreserved "
                        f"concurrency [{unreserved}]; leave at least {limits.UNRESERVED_FLOOR} unreserved."
                    )
            record = ProvisionedConcurrencyRecord(ref.account, ref.region, ref.name, qualifier, requested, timestamp())
            tx.put_provisioned(record)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return self._describe(record, include_arn=False)

    def get(self, ref: FunctionRef, qualifier: str) -> dict[str, Any]:
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(NOT_PUBLISHED)
        with self.deps.store.read() as tx:
            require_qualifier(tx, ref, qualifier)
            record = tx.get_provisioned(ref.account, ref.region, ref.name, qualifier)
        if record is None:
            raise errors.ProvisionedConcurrencyConfigNotFound(NOT_FOUND)
        return self._describe(record, include_arn=False)

    def delete(self, ref: FunctionRef, qualifier: str) -> None:
        if qualifier == LATEST:
            raise errors.InvalidParameterValue(NOT_PUBLISHED)
        with self.deps.store.transaction() as tx:
            require_qualifier(tx, ref, qualifier)
            if tx.get_provisioned(ref.account, ref.region, ref.name, qualifier) is None:
                return  # as on AWS: nothing to delete is no error
            tx.delete_provisioned(ref.account, ref.region, ref.name, qualifier)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)

    def list(self, ref: FunctionRef, marker: str | None, max_items: int | None) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            require_function(tx, ref)
            records = tx.list_provisioned(ref.account, ref.region, ref.name)
        after = decode(marker, is_str)
        ordered = sorted(records, key=lambda r: r.qualifier)
        if after is not None:
            ordered = [r for r in ordered if r.qualifier > after]
        size = page_size(max_items)
        items = ordered[:size]
        result: dict[str, Any] = {"ProvisionedConcurrencyConfigs": [self._describe(r, include_arn=True) for r in items]}
        if len(ordered) > size:
            result["NextMarker"] = encode(items[-1].qualifier)
        return result

    @staticmethod
    def _target_version(tx: Any, ref: FunctionRef, qualifier: str) -> str:
        """The published version a qualifier designates (an alias's primary version)."""
        if is_version(qualifier):
            if tx.get_version(ref.account, ref.region, ref.name, qualifier) is None:
                raise function_not_found(ref, qualifier)
            return qualifier
        alias = tx.get_alias(ref.account, ref.region, ref.name, qualifier)
        if alias is None:
            raise function_not_found(ref, qualifier)
        if alias.function_version == LATEST:
            raise errors.InvalidParameterValue(UNPUBLISHED)
        return str(alias.function_version)

    def _describe(self, record: ProvisionedConcurrencyRecord, include_arn: bool) -> dict[str, Any]:
        ready, error = self.status_of(
            record.account, record.region, record.function_name, record.qualifier, record.requested
        )
        allocated = min(ready, record.requested)
        if error and allocated < record.requested:
            status = "FAILED"
        elif allocated >= record.requested:
            status = "READY"
        else:
            status = "IN_PROGRESS"
        result: dict[str, Any] = {
            "RequestedProvisionedConcurrentExecutions": record.requested,
            "AllocatedProvisionedConcurrentExecutions": allocated,
            "AvailableProvisionedConcurrentExecutions": allocated,
            "Status": status,
            "LastModified": record.last_modified,
        }
        if status == "FAILED":
            result["StatusReason"] = f"Provisioned Concurrency configuration failed to be applied. Reason: {error}"
        if include_arn:
            result["FunctionArn"] = function_arn(record.account, record.region, record.function_name, record.qualifier)
        return result
