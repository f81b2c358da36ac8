"""Lambda's retry rules for asynchronous invocations, as pure decisions.

- A function error (unhandled exception, timeout, runtime exit) uses up one of
  `MaximumRetryAttempts`; Lambda waits about a minute before the second attempt and
  about two before the third.
- A throttle or a platform error (no environment could start, the service failed) does
  not: the event goes back to the queue with exponential backoff (1 s doubling up to
  5 min) until its maximum age.
- An event older than `MaximumEventAgeInSeconds` is not run again: EventAgeExceeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdastack.invoke.async_clock import AsyncClock

FUNCTION_ERROR_DELAYS_S = (60.0, 120.0)  # before the 2nd and the 3rd attempt
BACKOFF_START_S = 1.0
BACKOFF_CAP_S = 300.0
DELIVERY_ATTEMPTS = 6  # a record or dead letter is tried this often before it is dropped
DELIVERY_BACKOFF_START_S = 1.0
DELIVERY_BACKOFF_CAP_S = 60.0


@dataclass(frozen=True)
class Retry:
    at: float  # wall-clock time of the next attempt


@dataclass(frozen=True)
class GiveUp:
    condition: str  # RetriesExhausted | EventAgeExceeded


Decision = Retry | GiveUp


@dataclass(frozen=True)
class RetryPolicy:
    max_retry_attempts: int
    max_event_age_s: float

    def expired(self, clock: AsyncClock, received_at: float, now: float) -> bool:
        return clock.age(received_at, now) >= self.max_event_age_s

    def expires_at(self, clock: AsyncClock, received_at: float) -> float:
        return received_at + clock.real(self.max_event_age_s)

    def after_function_error(self, clock: AsyncClock, received_at: float, function_errors: int, now: float) -> Decision:
        """`function_errors`: function errors so far, this one included."""
        if function_errors > self.max_retry_attempts:
            return GiveUp("RetriesExhausted")
        delay = FUNCTION_ERROR_DELAYS_S[min(function_errors, len(FUNCTION_ERROR_DELAYS_S)) - 1]
        return self._retry(clock, received_at, clock.after(delay, now))

    def after_throttle(self, clock: AsyncClock, received_at: float, backoffs: int, now: float) -> Decision:
        """`backoffs`: consecutive throttles or platform errors, this one included."""
        if self.expired(clock, received_at, now):
            return GiveUp("EventAgeExceeded")
        delay = min(BACKOFF_CAP_S, BACKOFF_START_S * 2 ** min(backoffs - 1, 20))
        return self._retry(clock, received_at, clock.after(delay, now))

    def _retry(self, clock: AsyncClock, received_at: float, at: float) -> Retry:
        # Never wait past the event's expiry: it is then reported as EventAgeExceeded on time.
        return Retry(min(at, self.expires_at(clock, received_at)))


def delivery_retry_at(clock: AsyncClock, attempts: int, now: float) -> float | None:
    """When to try a failed delivery again; None once it has been tried often enough."""
    if attempts >= DELIVERY_ATTEMPTS:
        return None
    return clock.after(min(DELIVERY_BACKOFF_CAP_S, DELIVERY_BACKOFF_START_S * 2 ** (attempts - 1)), now)
