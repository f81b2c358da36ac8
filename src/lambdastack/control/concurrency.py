"""Reserved concurrency per function, and the account-wide numbers it is carved out of.

Reservations may not push the account's unreserved concurrency below its floor of 100,
so that functions without a reservation can always run.
"""

from __future__ import annotations

from lambdastack import errors
from lambdastack.control import limits
from lambdastack.control.common import Deps, function_not_found, require_function
from lambdastack.control.names import FunctionRef
from lambdastack.store.records import LATEST


class ConcurrencyService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def put(self, ref: FunctionRef, reserved: int) -> int:
        with self.deps.store.transaction() as tx:
            fn = tx.get_function(ref.account, ref.region, ref.name)
            if fn is None:
                raise function_not_found(ref, LATEST)  # AWS names $LATEST here
            others = tx.reserved_concurrency_total(ref.account, ref.region, excluding=ref.name)
            if self.deps.account_concurrency - others - reserved < limits.UNRESERVED_FLOOR:
                raise errors.InvalidParameterValue(
                    "Specified ReservedConcurrentExecutions for function decreases account's "
                    f"UnreservedConcurrentExecution below its minimum value of [{limits.UNRESERVED_FLOOR}]."
                )
            fn.reserved_concurrency = reserved
            tx.put_function(fn)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return reserved

    def get(self, ref: FunctionRef) -> int | None:
        with self.deps.store.read() as tx:
            return require_function(tx, ref).reserved_concurrency

    def delete(self, ref: FunctionRef) -> None:
        with self.deps.store.transaction() as tx:
            fn = require_function(tx, ref)
            fn.reserved_concurrency = None
            tx.put_function(fn)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
