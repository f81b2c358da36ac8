"""Concurrency as Lambda enforces it: reserved and account limits, scaling rate, host memory."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import Server, create_function, invoke

SLEEPS = "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 1.0))\n    return 'done'\n"


def invoke_concurrently(lam: Any, name: str, count: int, sleep: float = 1.5, stagger: float = 0.2) -> list[Any]:
    """Start `count` invocations at once (the first one alone, so that it is surely running);
    return each one's result: the payload, or the ClientError."""
    def one(_: int) -> Any:
        try:
            return invoke(lam, name, {"sleep": sleep}).result
        except ClientError as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        first = pool.submit(one, 0)
        time.sleep(stagger)
        rest = [pool.submit(one, i) for i in range(1, count)]
        return [first.result(), *(f.result() for f in rest)]


def throttles(results: list[Any]) -> list[ClientError]:
    return [r for r in results if isinstance(r, ClientError)]


def assert_throttled(error: ClientError, reason: str) -> None:
    assert error.response["Error"]["Code"] == "TooManyRequestsException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error.response["Reason"] == reason
    assert error.response["Error"]["Message"] == "Rate Exceeded."


def test_reserved_concurrency_limits_concurrent_invocations(plain_lam: Any) -> None:
    name = create_function(plain_lam, SLEEPS, Timeout=10)
    plain_lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    results = invoke_concurrently(plain_lam, name, 2)
    assert results[0] == "done"
    [throttle] = throttles(results)
    assert_throttled(throttle, "ReservedFunctionConcurrentInvocationLimitExceeded")
    # Once the first one finished, the function takes invocations again.
    assert invoke(plain_lam, name, {"sleep": 0}).result == "done"


def test_reserved_concurrency_zero_disables_the_function(plain_lam: Any) -> None:
    name = create_function(plain_lam, SLEEPS)
    plain_lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        invoke(plain_lam, name, {"sleep": 0})
    assert_throttled(e.value, "ReservedFunctionConcurrentInvocationLimitExceeded")
    plain_lam.delete_function_concurrency(FunctionName=name)
    assert invoke(plain_lam, name, {"sleep": 0}).result == "done"


def test_account_limit_throttles_unreserved_functions(private_server: Any) -> None:
    server: Server = private_server("--account-concurrency", "2")
    lam = server.client()
    assert lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"] == 2
    first = create_function(lam, SLEEPS, Timeout=10)
    second = create_function(lam, SLEEPS, Timeout=10)
    results: dict[str, Any] = {}

    def run(key: str, name: str) -> None:
        try:
            results[key] = invoke(lam, name, {"sleep": 2}).result
        except ClientError as e:
            results[key] = e

    threads = [threading.Thread(target=run, args=(f"busy{i}", n)) for i, n in enumerate((first, second))]
    for t in threads:
        t.start()
    time.sleep(0.8)  # both are running now: the account's two slots are taken
    with pytest.raises(ClientError) as e:
        invoke(lam, first, {"sleep": 0})
    assert_throttled(e.value, "ConcurrentInvocationLimitExceeded")
    for t in threads:
        t.join()
    assert results == {"busy0": "done", "busy1": "done"}


def test_scaling_rate_limits_new_environments(private_server: Any) -> None:
    server: Server = private_server("--scaling-rate", "2")
    lam = server.client()
    name = create_function(lam, SLEEPS, Timeout=10)
    results = invoke_concurrently(lam, name, 3, sleep=1.5, stagger=0.3)
    assert results.count("done") == 2
    [throttle] = throttles(results)
    assert_throttled(throttle, "FunctionInvocationRateLimitExceeded")


def test_memory_budget_throttles_beyond_capacity(private_server: Any) -> None:
    server: Server = private_server("--memory-budget", "256")
    lam = server.client()
    name = create_function(lam, SLEEPS, Timeout=10, MemorySize=128)
    results = invoke_concurrently(lam, name, 3, sleep=4.0, stagger=0.5)
    assert results.count("done") == 2
    [throttle] = throttles(results)
    assert_throttled(throttle, "ConcurrentInvocationLimitExceeded")


def test_with_the_memory_budget_full_a_waiting_invocation_takes_an_environment_that_comes_free(
        private_server: Any) -> None:
    """Two environments fill the budget; the third and fourth invocations wait for one of them
    to finish (well within the 2 s an invocation waits for room) instead of being throttled
    for want of room for a new one."""
    server: Server = private_server("--memory-budget", "256")
    lam = server.client()
    counting = ("import time\nserved = 0\ndef handler(event, context):\n    global served\n    served += 1\n"
                "    time.sleep(event['sleep'])\n    return served\n")
    name = create_function(lam, counting, Timeout=10, MemorySize=128)
    results = invoke_concurrently(lam, name, 4, sleep=0.6, stagger=0.3)
    # Two environments served all four: none was evicted to make room for a cold one.
    assert results.count(1) == 2 and all(isinstance(r, int) for r in results), results


def test_memory_pressure_evicts_idle_environments(private_server: Any) -> None:
    """Idle environments of one function make room for another's, least recently used first."""
    server: Server = private_server("--memory-budget", "256")
    lam = server.client()
    counter = "n = 0\ndef handler(event, context):\n    global n\n    n += 1\n    return n\n"
    big = create_function(lam, counter, MemorySize=256)
    small = create_function(lam, counter, MemorySize=128)
    assert invoke(lam, big).result == 1
    assert invoke(lam, big).result == 2  # warm
    assert invoke(lam, small).result == 1  # needed the big one's room: it was evicted
    assert invoke(lam, big).result == 1  # a fresh environment: the old one is gone
    assert invoke(lam, small).result == 1  # and the small one made room for the big one in turn


def test_a_function_asking_more_than_the_budget_is_throttled(private_server: Any) -> None:
    server: Server = private_server("--memory-budget", "256")
    lam = server.client()
    name = create_function(lam, SLEEPS, MemorySize=512)
    with pytest.raises(ClientError) as e:
        invoke(lam, name, {"sleep": 0})
    assert_throttled(e.value, "ConcurrentInvocationLimitExceeded")
