"""GetAccountSettings: the account's limits and what it uses of them, per region."""

from __future__ import annotations

from typing import Any

from lambdastack.control import limits
from lambdastack.control.common import Deps


class AccountService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def settings(self, account: str, region: str) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            reserved = tx.reserved_concurrency_total(account, region)
            code_size = tx.total_code_size(account, region)
            count = tx.function_count(account, region)
        return {
            "AccountLimit": {
                "TotalCodeSize": limits.TOTAL_CODE_STORAGE,
                "CodeSizeUnzipped": limits.UNZIPPED_MAX_BYTES,
                "CodeSizeZipped": limits.ZIP_MAX_BYTES,
                "ConcurrentExecutions": self.deps.account_concurrency,
                "UnreservedConcurrentExecutions": max(0, self.deps.account_concurrency - reserved),
            },
            "AccountUsage": {"TotalCodeSize": code_size, "FunctionCount": count},
        }
