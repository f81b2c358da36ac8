"""Concurrency, as Lambda counts it: who may start an invocation now.

Each region of the account has a concurrency limit (default 1,000). A function with
reserved concurrency R runs at most R invocations at once, from its own pool; R = 0
disables it. Every other function shares the unreserved pool: the account limit minus all
reservations. An invocation beyond its pool is throttled with `TooManyRequestsException`
(429) and Lambda's `Reason`.

The counts live in memory: in the embedded deployment this process runs every invocation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lambdastack import errors

Region = tuple[str, str]  # (account, region)
FunctionKey = tuple[str, str, str]  # (account, region, name)

RESERVED_EXCEEDED = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_EXCEEDED = "ConcurrentInvocationLimitExceeded"


def throttled(reason: str) -> errors.LambdaError:
    return errors.TooManyRequests("Rate Exceeded.", Reason=reason)


@dataclass
class Ticket:
    """One admitted invocation; give it back with `Admission.leave`."""

    function: FunctionKey
    reserved: bool
    left: bool = False


class Admission:
    def __init__(
        self,
        account_limit: int,
        reserved_of: Callable[[str, str, str], int | None],
        reserved_total: Callable[[str, str], int],
    ) -> None:
        self.account_limit = account_limit
        self._reserved_of = reserved_of
        self._reserved_total = reserved_total
        self._reserved_cache: dict[FunctionKey, int | None] = {}
        self._total_cache: dict[Region, int] = {}
        self._in_flight: dict[FunctionKey, int] = {}
        self._unreserved_in_use: dict[Region, int] = {}

    def forget(self, account: str, region: str, name: str) -> None:
        """A function's settings changed: read its reservation (and the region's total) again."""
        self._reserved_cache.pop((account, region, name), None)
        self._total_cache.pop((account, region), None)

    def reserved(self, account: str, region: str, name: str) -> int | None:
        key = (account, region, name)
        try:
            return self._reserved_cache[key]
        except KeyError:
            value = self._reserved_cache[key] = self._reserved_of(account, region, name)
            return value

    def unreserved_pool(self, account: str, region: str) -> int:
        key = (account, region)
        total = self._total_cache.get(key)
        if total is None:
            total = self._total_cache[key] = self._reserved_total(account, region)
        return max(0, self.account_limit - total)

    def enter(self, account: str, region: str, name: str) -> Ticket:
        """Admit one invocation of the function, or raise TooManyRequestsException."""
        key = (account, region, name)
        running = self._in_flight.get(key, 0)
        reserved = self.reserved(account, region, name)
        if reserved is not None:
            if running >= reserved:
                raise throttled(RESERVED_EXCEEDED)
        else:
            pool = (account, region)
            in_use = self._unreserved_in_use.get(pool, 0)
            if in_use >= self.unreserved_pool(account, region):
                raise throttled(ACCOUNT_EXCEEDED)
            self._unreserved_in_use[pool] = in_use + 1
        self._in_flight[key] = running + 1
        return Ticket(key, reserved is not None)

    def leave(self, ticket: Ticket) -> None:
        if ticket.left:
            return
        ticket.left = True
        key = ticket.function
        left = self._in_flight.get(key, 1) - 1
        if left:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)
        if not ticket.reserved:
            pool = key[:2]
            self._unreserved_in_use[pool] = max(0, self._unreserved_in_use.get(pool, 1) - 1)

    def in_flight(self, account: str, region: str, name: str) -> int:
        return self._in_flight.get((account, region, name), 0)

    def usage(self) -> dict[str, int]:
        return {"in_flight": sum(self._in_flight.values()), "unreserved_in_use": sum(self._unreserved_in_use.values())}
