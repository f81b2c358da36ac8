"""The cost report: per function and version, what was used and what AWS Lambda would bill.

Usage comes from the ledger's hourly buckets. On-demand duration is priced per month, region
and architecture along AWS's tiers; the monthly free tier (1M requests, 400,000 GB-s, not
for provisioned concurrency) is shown apart from the bill before it, spent in time order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lambdastack.cost.prices import Prices, Rates
from lambdastack.observe.usage.ledger import UsageRow

DEFAULT_PRICE_REGION = "us-east-1"
FREE_EPHEMERAL_MB = 512

_COSTS = ("requests", "duration", "ephemeralStorage", "provisionedConcurrency", "provisionedDuration")


@dataclass
class _Line:
    """One function version with one configuration (memory, storage, architecture)."""

    region: str
    function_name: str
    version: str
    architecture: str
    memory_mb: int
    ephemeral_mb: int
    price_region: str
    price_architecture: str
    requests: int = 0
    provisioned_requests: int = 0
    billed_ms: int = 0
    init_ms: int = 0
    provisioned_billed_ms: int = 0
    provisioned_env_ms: int = 0
    costs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COSTS, 0.0))

    def gb_seconds(self, ms: int) -> float:
        return ms / 1000 * self.memory_mb / 1024

    def to_json(self) -> dict[str, Any]:
        ephemeral_gb = max(0, self.ephemeral_mb - FREE_EPHEMERAL_MB) / 1024
        return {
            "functionName": self.function_name,
            "version": self.version,
            "region": self.region,
            "architecture": self.architecture,
            "memorySizeMB": self.memory_mb,
            "ephemeralStorageMB": self.ephemeral_mb,
            "requests": self.requests + self.provisioned_requests,
            "billedDurationMs": self.billed_ms + self.provisioned_billed_ms,
            "initBilledDurationMs": self.init_ms,
            "gbSeconds": _round(self.gb_seconds(self.billed_ms)),
            "ephemeralStorageGbSeconds": _round((self.billed_ms + self.provisioned_billed_ms) / 1000 * ephemeral_gb),
            "provisionedConcurrency": {
                "requests": self.provisioned_requests,
                "durationGbSeconds": _round(self.gb_seconds(self.provisioned_billed_ms)),
                "environmentSeconds": _round(self.provisioned_env_ms / 1000),
                "gbSeconds": _round(self.gb_seconds(self.provisioned_env_ms)),
            },
            "priceRegion": self.price_region,
            "priceArchitecture": self.price_architecture,
            "cost": _costs_json(self.costs),
        }


def _round(value: float) -> float:
    return round(value, 9)


def _money(value: float) -> float:
    """Ten significant digits: a fraction of a cent keeps its precision."""
    return float(f"{value:.10g}")


def _costs_json(costs: dict[str, float]) -> dict[str, float]:
    return {**{k: _money(v) for k, v in costs.items()}, "total": _money(sum(costs.values()))}


def _month(hour: int) -> str:
    return dt.datetime.fromtimestamp(hour, dt.UTC).strftime("%Y-%m")


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    rows: Iterable[UsageRow], prices: Prices, since: float, until: float,
    price_region: str | None = None, architecture: str | None = None,
) -> dict[str, Any]:
    """The report document (the JSON of `GET /_lambdastack/cost` and `lambdastack cost --json`).

    `price_region` / `architecture`: price everything as if it ran there and so (default: each
    function's own region, or us-east-1 where the price file has none, and its own architecture).
    """
    if price_region is not None:
        prices.rates(price_region, architecture or "x86_64")  # unknown names fail before anything else
    if architecture is not None:
        prices.rates(price_region or DEFAULT_PRICE_REGION, architecture)
    rows = sorted(rows, key=lambda r: r.hour)
    unpriced: set[str] = set()
    lines: dict[tuple[Any, ...], _Line] = {}
    rates_of: dict[tuple[str, str], Rates] = {}
    # On-demand GB-s per month, price region and architecture: what the tiers apply to.
    monthly: dict[tuple[str, str, str], float] = {}
    for row in rows:
        region = price_region or (row.region if row.region in prices.regions else DEFAULT_PRICE_REGION)
        if region != (price_region or row.region):
            unpriced.add(row.region)
        arch = architecture or row.architecture
        rates = rates_of.get((region, arch))
        if rates is None:
            rates = rates_of[(region, arch)] = prices.rates(region, arch)
        key = (row.region, row.function_name, row.version, row.architecture, row.memory_mb, row.ephemeral_mb)
        line = lines.get(key)
        if line is None:
            line = lines[key] = _Line(row.region, row.function_name, row.version, row.architecture, row.memory_mb,
                                      row.ephemeral_mb, region, arch)
        line.requests += row.requests
        line.provisioned_requests += row.provisioned_requests
        line.billed_ms += row.billed_ms
        line.init_ms += row.init_ms
        line.provisioned_billed_ms += row.provisioned_billed_ms
        line.provisioned_env_ms += row.provisioned_env_ms
        gb_s = line.gb_seconds(row.billed_ms)
        month = (_month(row.hour), region, arch)
        before = monthly.get(month, 0.0)
        monthly[month] = before + gb_s
        ephemeral_gb = max(0, row.ephemeral_mb - FREE_EPHEMERAL_MB) / 1024
        line.costs["requests"] += (row.requests + row.provisioned_requests) * rates.per_request
        line.costs["duration"] += rates.duration(gb_s, before)
        line.costs["ephemeralStorage"] += ((row.billed_ms + row.provisioned_billed_ms) / 1000 * ephemeral_gb
                                           * rates.ephemeral_per_gb_second)
        line.costs["provisionedConcurrency"] += (line.gb_seconds(row.provisioned_env_ms)
                                                 * rates.provisioned_concurrency_per_gb_second)
        line.costs["provisionedDuration"] += (line.gb_seconds(row.provisioned_billed_ms)
                                              * rates.provisioned_duration_per_gb_second)
    free = _free_tier(rows, prices, lines, rates_of, price_region, architecture)
    ordered = sorted(lines.values(), key=lambda x: (x.function_name, x.region, _version_order(x.version)))
    total_costs = dict.fromkeys(_COSTS, 0.0)
    for line in ordered:
        for name, value in line.costs.items():
            total_costs[name] += value
    before_free = sum(total_costs.values())
    return {
        "since": _iso(since),
        "until": _iso(until),
        "currency": prices.currency,
        "prices": {"date": prices.date, "source": prices.source},
        "pricedAs": {"region": price_region, "architecture": architecture},
        "functions": [line.to_json() for line in ordered],
        "total": {
            "requests": sum(x.requests + x.provisioned_requests for x in ordered),
            "gbSeconds": _round(sum(x.gb_seconds(x.billed_ms) for x in ordered)),
            "ephemeralStorageGbSeconds": _round(sum(
                (x.billed_ms + x.provisioned_billed_ms) / 1000 * max(0, x.ephemeral_mb - FREE_EPHEMERAL_MB) / 1024
                for x in ordered)),
            "provisionedConcurrencyGbSeconds": _round(sum(x.gb_seconds(x.provisioned_env_ms) for x in ordered)),
            "cost": _costs_json(total_costs),
        },
        "freeTier": free,
        "bill": {
            "beforeFreeTier": _money(before_free),
            "freeTierCredit": free["credit"],
            "total": _money(max(0.0, before_free - free["credit"])),
        },
        "notes": [f"no prices for {r} in the price file: priced as {DEFAULT_PRICE_REGION}" for r in sorted(unpriced)],
    }


def _free_tier(
    rows: list[UsageRow], prices: Prices, lines: dict[tuple[Any, ...], _Line], rates_of: dict[tuple[str, str], Rates],
    price_region: str | None, architecture: str | None,
) -> dict[str, Any]:
    """What the monthly free tier covers of on-demand usage (first come, first covered)."""
    left: dict[str, list[float]] = {}
    covered_requests = 0
    covered_gb_s = 0.0
    credit = 0.0
    for row in rows:
        line = lines[(row.region, row.function_name, row.version, row.architecture, row.memory_mb, row.ephemeral_mb)]
        rates = rates_of[(line.price_region, line.price_architecture)]
        allowance = left.setdefault(_month(row.hour), [float(prices.free_requests), float(prices.free_gb_seconds)])
        requests = min(allowance[0], row.requests)
        gb_s = min(allowance[1], line.gb_seconds(row.billed_ms))
        allowance[0] -= requests
        allowance[1] -= gb_s
        covered_requests += int(requests)
        covered_gb_s += gb_s
        credit += requests * rates.per_request + gb_s * rates.duration_tiers[0].per_gb_second
    return {
        "requestsPerMonth": prices.free_requests,
        "gbSecondsPerMonth": prices.free_gb_seconds,
        "requestsCovered": covered_requests,
        "gbSecondsCovered": _round(covered_gb_s),
        "credit": _money(credit),
    }


def _version_order(version: str) -> tuple[int, int]:
    return (0, int(version)) if version.isdigit() else (1, 0)
