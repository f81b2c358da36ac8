"""AWS Lambda's published prices, from `prices.json` (one file, with the date they were read)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

ARCHITECTURES = ("x86_64", "arm64")


class PriceError(ValueError):
    """A region or architecture the price file does not have."""


@dataclass(frozen=True)
class Tier:
    up_to_gb_seconds: float | None  # None: no upper bound
    per_gb_second: float


@dataclass(frozen=True)
class Rates:
    """One region and architecture's rates (USD)."""

    region: str
    architecture: str
    per_request: float
    duration_tiers: tuple[Tier, ...]
    ephemeral_per_gb_second: float
    provisioned_concurrency_per_gb_second: float
    provisioned_duration_per_gb_second: float

    def duration(self, gb_seconds: float, before: float = 0.0) -> float:
        """The price of `gb_seconds` of on-demand duration when `before` were used earlier in the month."""
        cost, start, left = 0.0, before, gb_seconds
        floor = 0.0
        for tier in self.duration_tiers:
            top = tier.up_to_gb_seconds if tier.up_to_gb_seconds is not None else float("inf")
            if start < top and left > 0:
                take = min(left, top - max(start, floor))
                cost += take * tier.per_gb_second
                left -= take
                start += take
            floor = top
        return cost


@dataclass(frozen=True)
class Prices:
    date: str
    source: str
    currency: str
    free_requests: int
    free_gb_seconds: int
    regions: dict[str, Any]

    def rates(self, region: str, architecture: str) -> Rates:
        entry = self.regions.get(region)
        if entry is None:
            raise PriceError(f"No AWS Lambda prices for region {region!r}; known regions: "
                             f"{', '.join(sorted(self.regions))}")
        arch = entry["architectures"].get(architecture)
        if arch is None:
            raise PriceError(f"No AWS Lambda prices for architecture {architecture!r}; known: "
                             f"{', '.join(ARCHITECTURES)}")
        return Rates(
            region=region,
            architecture=architecture,
            per_request=entry["requestsPerMillion"] / 1_000_000,
            duration_tiers=tuple(Tier(t["upToGbSeconds"], t["perGbSecond"]) for t in arch["durationTiers"]),
            ephemeral_per_gb_second=entry["ephemeralStoragePerGbSecond"],
            provisioned_concurrency_per_gb_second=arch["provisionedConcurrencyPerGbSecond"],
            provisioned_duration_per_gb_second=arch["provisionedDurationPerGbSecond"],
        )


@cache
def load() -> Prices:
    doc = json.loads(resources.files("lambdastack.cost").joinpath("prices.json").read_text())
    return Prices(
        date=doc["date"],
        source=doc["source"],
        currency=doc["currency"],
        free_requests=int(doc["freeTier"]["requestsPerMonth"]),
        free_gb_seconds=int(doc["freeTier"]["gbSecondsPerMonth"]),
        regions=doc["regions"],
    )
