"""What the comparison runs: the workloads, their sizes, and the interface each system under test offers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

WORKLOADS = ("cold", "snapstart", "warm", "throughput", "idle", "server")


class Skipped(Exception):
    """A workload that a system cannot run, or cannot run here; the message says why."""


@dataclass(frozen=True)
class Sizes:
    cold: int = 40  # new environments / instances / processes measured
    cold_gap: float = 0.1  # seconds between two of them (a pre-built pool refills meanwhile)
    snapstart: int = 8  # published SnapStart versions, each restored once
    snapstart_peers: int = 4  # slow inits on each peer (each costs over a second)
    warm: int = 2000  # sequential warm round trips
    warmup: int = 200  # untimed round trips before them
    clients: int = 8  # concurrent connections for throughput
    seconds: float = 5.0  # duration of the throughput run
    wrk_threads: int = 1  # wrk's own threads (one C thread drives 8 connections easily)
    idle: int = 1000  # idle warm environments to aim for (fewer if memory runs short)
    idle_peer: int = 50  # idle serverless-offline instances
    idle_floor_mb: int = 4096  # stop adding idle environments when the host has less available than this

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Target:
    """A system under comparison. Each workload returns its figures, or raises Skipped."""

    name = ""

    def version(self) -> str:
        return ""

    def cold(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")

    def snapstart(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")

    def warm(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")

    def throughput(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")

    def idle(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")

    def server(self, sizes: Sizes) -> dict[str, Any]:
        raise Skipped("not offered")
