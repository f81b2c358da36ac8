"""Runs queued asynchronous invocations: fairly, with Lambda's retries, destinations and DLQs.

Scheduling. Events are claimed per function. Each round hands the free slots out in equal
shares to the functions that have ready events and room under their own cap (their
reserved concurrency, or a per-function share of the slots), least recently served first,
so one function flooding the queue cannot keep another one's events waiting. A function
with reserved concurrency 0 runs nothing; its events wait until their maximum age and
then fail as EventAgeExceeded.

Outcomes. Success goes to the OnSuccess destination, if any. A function error is retried
per `retry_policy`; a throttle or a platform error goes back to the queue with backoff.
When an event gives up, its record goes to the OnFailure destination, else the original
event goes to the function's dead-letter queue, else it is dropped and counted. A record
or dead letter that cannot be delivered is retried with backoff, and after that counted
as dropped, with the reason. Every outcome and its counters commit together with the
event's removal or rescheduling.

Delivery is at least once: an event whose run was cut short by a crash is run again after
a restart, with the same request id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.control.names import function_arn
from lambdastack.invoke.async_activity import AsyncActivity
from lambdastack.invoke.async_clock import AsyncClock
from lambdastack.invoke.async_state import KEPT_RESPONSE_BYTES, EventState, LastResult, PendingDelivery
from lambdastack.invoke.destinations import Deliverer, DeliveryError
from lambdastack.invoke.invocation_record import dead_letter_attributes, invocation_record
from lambdastack.invoke.retry_policy import Retry, RetryPolicy, delivery_retry_at
from lambdastack.invoke.service import InvokeService
from lambdastack.observe.cloudwatch_metrics.recorder import (
    ASYNC_AGE,
    ASYNC_DROPPED,
    DEAD_LETTER_ERROR,
    DESTINATION_FAILURE,
)
from lambdastack.observe.tracing.async_spans import queue_wait, queued_trace, traced_delivery
from lambdastack.store.base import Store
from lambdastack.store.event_invoke_configs import EventInvokeConfigStore
from lambdastack.store.event_queue import EventQueue, FunctionKey, QueuedEvent
from lambdastack.store.records import LATEST

log = logging.getLogger("lambdastack.invoke.async")

DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_S = 21_600
REFRESH_S = 2.0  # how often the whole queue is looked over (events queued by other nodes, expiries)
NEVER = math.inf


@dataclass(frozen=True)
class AsyncSettings:
    time_scale: float = 1.0
    concurrency: int = 32  # events running at once, all functions together
    per_function: int = 8  # events of one function running at once, unless its reserved concurrency is lower
    aws_endpoint_url: str | None = None


@dataclass(frozen=True)
class EventSettings:
    """A qualifier's EventInvokeConfig, with Lambda's defaults filled in."""

    policy: RetryPolicy
    on_success: str | None
    on_failure: str | None


class AsyncInvoker:
    def __init__(
        self,
        queue: EventQueue,
        service: InvokeService,
        store: Store,
        configs: EventInvokeConfigStore,
        settings: AsyncSettings | None = None,
    ) -> None:
        self.queue = queue
        self.service = service
        self.store = store
        self.configs = configs
        self.settings = settings or AsyncSettings()
        self.clock = AsyncClock(self.settings.time_scale)
        self.deliverer = Deliverer(self.settings.aws_endpoint_url, self.enqueue)
        self.activity = AsyncActivity()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        # Functions that may have ready events now, and when others will (a retry's time).
        self._ready: set[FunctionKey] = set()
        self._timers: dict[FunctionKey, float] = {}
        self._served: dict[FunctionKey, int] = {}
        self._rounds = 0
        self._event_settings: dict[tuple[str, str, str, str], EventSettings] = {}
        self._reserved: dict[FunctionKey, int | None] = {}
        self._blocked_check_at = 0.0

    # ------------------------------------------------------------------ lifecycle and notifications

    def notify(self, event: QueuedEvent) -> None:
        """A new event was queued."""
        self._ready.add(event.key)
        self._wake.set()

    def forget(self, account: str, region: str, name: str) -> None:
        """A function or its settings changed: drop what was cached, look at its events again."""
        for cache_key in [k for k in self._event_settings if k[:3] == (account, region, name)]:
            del self._event_settings[cache_key]
        key = FunctionKey(account, region, name)
        self._reserved.pop(key, None)
        self._ready.add(key)
        self._wake.set()

    async def start(self) -> None:
        await self.queue.release_leases()
        self._task = asyncio.create_task(self._loop(), name="async-invoker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        self.deliverer.close()

    async def enqueue(self, account: str, region: str, name: str, qualifier: str | None, payload: bytes,
                      request_id: str | None = None) -> None:
        """Queue an asynchronous invocation of one of this platform's functions (a Lambda destination,
        an EventBridge target). A `request_id` already queued is refused (sqlite3.IntegrityError)."""
        target = self.service.resolver.resolve(name, qualifier, account, region)
        event = QueuedEvent(request_id=request_id or str(uuid.uuid4()), account=account, region=region,
                            function_name=target.version.function_name, qualifier=qualifier, payload=payload)
        await self.queue.put(event)
        self.notify(event)

    # ------------------------------------------------------------------ scheduling

    async def _loop(self) -> None:
        next_refresh = 0.0
        while True:
            self._wake.clear()
            try:
                now = self.clock.now()
                if now >= next_refresh:
                    await self._refresh(now)
                    next_refresh = now + REFRESH_S
                await self._dispatch(now)
                if now >= self._blocked_check_at:
                    blocked = await self._expire_blocked(now)
                    self._blocked_check_at = now + (min(1.0, max(0.05, self.clock.real(1.0))) if blocked else 1.0)
            except Exception:
                log.exception("the async scheduler failed; trying again")
                await asyncio.sleep(1.0)
                continue
            wake_at = min([*self._timers.values(), next_refresh, self._blocked_check_at])
            timeout = max(0.0, wake_at - self.clock.now())
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _refresh(self, now: float) -> None:
        for info in await self.queue.functions(now):
            if info.ready:
                self._ready.add(info.key)
            elif info.next_available_at is not None:
                self._schedule(info.key, info.next_available_at)

    def _schedule(self, key: FunctionKey, at: float) -> None:
        self._timers[key] = min(self._timers.get(key, NEVER), at)

    def _room(self, key: FunctionKey) -> int:
        reserved = self._reserved_concurrency(key)
        cap = self.settings.per_function if reserved is None else min(reserved, self.settings.per_function)
        return cap - self.activity.in_flight[key]

    async def _dispatch(self, now: float) -> None:
        for key, at in list(self._timers.items()):
            if at <= now:
                del self._timers[key]
                self._ready.add(key)
        free = self.settings.concurrency - len(self._running)
        if free <= 0:
            return
        candidates = [k for k in self._ready if self._room(k) > 0]
        candidates.sort(key=lambda k: self._served.get(k, 0))  # least recently served first
        while free > 0 and candidates:
            share = max(1, free // len(candidates))
            for key in list(candidates):
                want = min(share, self._room(key), free)
                events = await self.queue.claim(key, want, now=now) if want > 0 else []
                self._rounds += 1
                self._served[key] = self._rounds
                if len(events) < want or want <= 0:
                    candidates.remove(key)
                    if len(events) < want:
                        self._ready.discard(key)
                for event in events:
                    self._start(event)
                free -= len(events)
                if free <= 0:
                    return

    async def _expire_blocked(self, now: float) -> bool:
        """Functions with reserved concurrency 0 run nothing; their events still expire on time.

        True when there are such functions.
        """
        blocked = False
        for key in list(self._ready | set(self._timers)):
            if self._reserved_concurrency(key) != 0:
                continue
            blocked = True
            oldest_allowed = now - self.clock.real(self._shortest_max_age(key))
            for event in await self.queue.claim(key, 100, now=now, received_before=oldest_allowed):
                self._start(event)
        return blocked

    def _start(self, event: QueuedEvent) -> None:
        self.activity.in_flight[event.key] += 1
        task = asyncio.create_task(self._process(event))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    # ------------------------------------------------------------------ function settings (cached)

    def _reserved_concurrency(self, key: FunctionKey) -> int | None:
        try:
            return self._reserved[key]
        except KeyError:
            fn = self.store.get_function(key.account, key.region, key.name)
            value = self._reserved[key] = fn.reserved_concurrency if fn is not None else None
            return value

    def _settings_for(self, event: QueuedEvent) -> EventSettings:
        cache_key = (event.account, event.region, event.function_name, event.qualifier or LATEST)
        found = self._event_settings.get(cache_key)
        if found is None:
            record = self.configs.get(*cache_key)
            config: dict[str, Any] = record.config if record is not None else {}
            destinations = config.get("DestinationConfig") or {}
            found = self._event_settings[cache_key] = EventSettings(
                policy=RetryPolicy(
                    max_retry_attempts=int(config.get("MaximumRetryAttempts", DEFAULT_RETRY_ATTEMPTS)),
                    max_event_age_s=float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)),
                ),
                on_success=(destinations.get("OnSuccess") or {}).get("Destination"),
                on_failure=(destinations.get("OnFailure") or {}).get("Destination"),
            )
        return found

    def _shortest_max_age(self, key: FunctionKey) -> float:
        ages = [float(r.config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S))
                for r in self.configs.list(key.account, key.region, key.name)]
        return min([*ages, DEFAULT_MAX_EVENT_AGE_S])

    def _dead_letter_target(self, event: QueuedEvent) -> str | None:
        try:
            target = self.service.resolver.resolve(event.function_name, event.qualifier, event.account, event.region)
        except errors.LambdaError:
            return None
        return (target.version.config.get("DeadLetterConfig") or {}).get("TargetArn") or None

    # ------------------------------------------------------------------ one event

    async def _process(self, event: QueuedEvent) -> None:
        key = event.key
        try:
            state = EventState.load(event.extra)
            if state.delivery is not None:
                await self._deliver(event, state, state.delivery, {})
                return
            settings = self._settings_for(event)
            if settings.policy.expired(self.clock, event.received_at, self.clock.now()):
                await self._give_up(event, state, "EventAgeExceeded", settings)
                return
            if self._reserved_concurrency(key) == 0:
                await self._back_off(event, state, settings, LastResult(
                    429, error_type="TooManyRequestsException",
                    error_message="Rate Exceeded. Reason: ReservedFunctionConcurrentInvocationLimitExceeded"),
                    "throttles")
                return
            try:
                target = self.service.resolver.resolve(
                    event.function_name, event.qualifier, event.account, event.region
                )
            except errors.ResourceNotFound:
                await self._drop(event, "FunctionNotFound", {})
                return
            self._metric(ASYNC_AGE, event, (time.time() - event.received_at) * 1000.0)
            try:
                trace = queued_trace(state.trace)
                if event.attempts == 0:
                    queue_wait(self.service.tracing, trace, event.request_id, event.received_at)
                outcome = await self.service.run(target, event.request_id, event.payload, trace=trace)
            except errors.TooManyRequests as e:
                await self._back_off(event, state, settings, LastResult(
                    429, target.executed_version, error_type=e.code, error_message=e.message), "throttles")
                return
            except Exception as e:  # the platform failed, not the function
                log.warning("async invocation %s of %s hit a platform error: %s", event.request_id,
                            event.function_name, e)
                await self._back_off(event, state, settings, LastResult(
                    500, target.executed_version, error_type=type(e).__name__, error_message=str(e)),
                    "platformErrors")
                return
            event.attempts += 1
            if outcome.function_error is None and settings.on_success is None:
                await self.queue.finish(event, {"succeeded": 1})
                return
            state.last = LastResult(
                200, target.executed_version, outcome.function_error, outcome.error_type,
                _error_message(outcome.payload) if outcome.function_error else "",
                base64.b64encode(outcome.payload[:KEPT_RESPONSE_BYTES]).decode(),
            )
            if outcome.function_error is None:
                assert settings.on_success is not None
                await self._send_record(event, state, settings.on_success, "Success", {"succeeded": 1})
                return
            state.function_errors += 1
            state.backoffs = 0
            now = self.clock.now()
            decision = settings.policy.after_function_error(self.clock, event.received_at, state.function_errors, now)
            if isinstance(decision, Retry):
                await self._reschedule(event, state, decision.at, {"retries": 1})
            else:
                await self._give_up(event, state, decision.condition, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("async invocation %s could not be handled; it will be tried again", event.request_id)
            self.queue.release([event])
            self._schedule(key, self.clock.now() + 1.0)
        finally:
            self.activity.in_flight[key] -= 1
            if self.activity.in_flight[key] <= 0:
                del self.activity.in_flight[key]
            self._wake.set()

    async def _reschedule(self, event: QueuedEvent, state: EventState, at: float, counters: dict[str, int]) -> None:
        event.extra = state.dump()
        await self.queue.reschedule(event, at, counters)
        self._schedule(event.key, at)

    async def _back_off(
        self, event: QueuedEvent, state: EventState, settings: EventSettings, result: LastResult, counter: str
    ) -> None:
        state.backoffs += 1
        if state.last is None or state.last.status_code != 200:
            state.last = result  # a function's own error says more than a later throttle
        decision = settings.policy.after_throttle(self.clock, event.received_at, state.backoffs, self.clock.now())
        if isinstance(decision, Retry):
            await self._reschedule(event, state, decision.at, {counter: 1})
        else:
            await self._give_up(event, state, "EventAgeExceeded", settings)

    async def _give_up(self, event: QueuedEvent, state: EventState, condition: str, settings: EventSettings) -> None:
        counters = {"failed": 1, f"failed.{condition}": 1}
        if settings.on_failure:
            await self._send_record(event, state, settings.on_failure, condition, counters)
            return
        dead_letter = self._dead_letter_target(event)
        if dead_letter:
            attributes = dead_letter_attributes(event.request_id, state.last, condition)
            delivery = PendingDelivery("dead-letter", dead_letter, event.payload.decode("utf-8", "replace"),
                                       attributes=attributes, dropped_as="dropped.DeadLetterDeliveryFailed")
            await self._deliver(event, state, delivery, counters)
            return
        log.info("async invocation %s of %s dropped: %s", event.request_id, event.function_name, condition)
        await self._drop(event, condition, counters)

    async def _drop(self, event: QueuedEvent, reason: str, counters: dict[str, int]) -> None:
        self._metric(ASYNC_DROPPED, event)
        counters[f"dropped.{reason}"] = counters.get(f"dropped.{reason}", 0) + 1
        self.activity.dropped(event.key, event.request_id, reason, self.clock.now())
        await self.queue.finish(event, counters)

    async def _send_record(
        self, event: QueuedEvent, state: EventState, target: str, condition: str, counters: dict[str, int]
    ) -> None:
        arn = function_arn(event.account, event.region, event.function_name, event.qualifier or LATEST)
        record = invocation_record(
            request_id=event.request_id, function_arn=arn, condition=condition, invoke_count=event.attempts,
            payload=event.payload, result=state.last, at=self.clock.now(),
        )
        delivery = PendingDelivery("destination", target, orjson.dumps(record).decode(), success=condition == "Success",
                                   function_arn=arn, dropped_as="dropped.DestinationDeliveryFailed")
        await self._deliver(event, state, delivery, counters)

    async def _deliver(
        self, event: QueuedEvent, state: EventState, delivery: PendingDelivery, counters: dict[str, int]
    ) -> None:
        destination = delivery.kind == "destination"
        delivery.attempts += 1
        start_ns = time.time_ns()
        try:
            if destination:
                await self.deliverer.record(delivery.target, delivery.body, success=delivery.success,
                                            function_arn=delivery.function_arn)
            else:
                await self.deliverer.dead_letter(delivery.target, delivery.body, delivery.attributes)
        except DeliveryError as e:
            traced_delivery(self.service.tracing, queued_trace(state.trace), event.request_id, delivery.kind,
                            delivery.target, start_ns, str(e))
            failures = "destinationDeliveryFailures" if destination else "deadLetterErrors"
            self._metric(DESTINATION_FAILURE if destination else DEAD_LETTER_ERROR, event)
            counters[failures] = counters.get(failures, 0) + 1
            now = self.clock.now()
            self.activity.delivery_failed(event.key, event.request_id, delivery.target, str(e), now)
            log.warning("could not deliver %s of async invocation %s to %s (attempt %d): %s",
                        "the record" if destination else "the dead letter", event.request_id, delivery.target,
                        delivery.attempts, e)
            at = delivery_retry_at(self.clock, delivery.attempts, now)
            if at is None:
                await self._drop(event, delivery.dropped_as.removeprefix("dropped."), counters)
                return
            state.delivery = delivery
            await self._reschedule(event, state, at, counters)
            return
        traced_delivery(self.service.tracing, queued_trace(state.trace), event.request_id, delivery.kind,
                        delivery.target, start_ns, None)
        delivered = "destinationDeliveries" if destination else "deadLetterDeliveries"
        counters[delivered] = counters.get(delivered, 0) + 1
        await self.queue.finish(event, counters)

    # ------------------------------------------------------------------ visibility

    def _metric(self, kind: int, event: QueuedEvent, value: float = 1.0) -> None:
        recorder = self.service.recorder
        if recorder is not None:
            recorder.event(kind, event.account, event.region, event.function_name,
                           f"{event.function_name}:{event.qualifier}" if event.qualifier else None, value)

    async def describe(self, name: str | None = None, region: str | None = None) -> dict[str, Any]:
        now = self.clock.now()
        functions: list[dict[str, Any]] = []
        for info in sorted(await self.queue.functions(now), key=lambda i: (i.key.region, i.key.name)):
            if (name is not None and info.key.name != name) or (region is not None and info.key.region != region):
                continue
            counters = dict(sorted(info.counters.items()))
            functions.append({
                "functionName": info.key.name,
                "account": info.key.account,
                "region": info.key.region,
                "queueDepth": info.depth,
                "readyEvents": info.ready,
                "inFlight": self.activity.in_flight.get(info.key, 0),
                "oldestEventAgeSeconds": round(now - info.oldest_received_at, 3)
                if info.oldest_received_at is not None else None,
                "reservedConcurrency": self._reserved_concurrency(info.key),
                "dropped": {k.removeprefix("dropped."): v for k, v in counters.items() if k.startswith("dropped.")},
                "destinationDeliveryFailures": counters.get("destinationDeliveryFailures", 0),
                "deadLetterErrors": counters.get("deadLetterErrors", 0),
                "counters": counters,
            })
        return {
            "functions": functions,
            "totals": {
                "queueDepth": sum(f["queueDepth"] for f in functions),
                "inFlight": sum(f["inFlight"] for f in functions),
                "dropped": sum(sum(f["dropped"].values()) for f in functions),
            },
            "recentDrops": AsyncActivity.about(self.activity.recent_drops, name),
            "recentDeliveryFailures": AsyncActivity.about(self.activity.recent_delivery_failures, name),
            "settings": {
                "timeScale": self.settings.time_scale,
                "concurrency": self.settings.concurrency,
                "perFunctionConcurrency": self.settings.per_function,
                "awsEndpointUrl": self.settings.aws_endpoint_url,
            },
        }


def _error_message(payload: bytes) -> str:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload[:1024].decode("utf-8", "replace")
    if isinstance(body, dict):
        return str(body.get("errorMessage") or "")
    return ""
