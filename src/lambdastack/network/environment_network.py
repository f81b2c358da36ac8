"""What the worker and the engine ask of environments' network, whichever kind it is."""

from __future__ import annotations

import socket
from typing import Protocol


class EnvironmentNetwork(Protocol):
    # A listening socket of its own where functions reach the Lambda API (None: the server's port).
    endpoint: socket.socket | None

    @property
    def enabled(self) -> bool: ...

    @property
    def gateway(self) -> str | None:
        """The host as environments address it (None: no network)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def lease(self, env_id: str) -> dict[str, object] | None:
        """What the jailer needs to plug environment `env_id` in itself (None: nothing)."""

    async def attach(self, env_id: str, pid: int) -> None:
        """Connect environment `env_id`, whose PID 1 is `pid`, from the host's side."""

    def release(self, env_id: str) -> None: ...

    def etc_files(self) -> dict[str, str]: ...

    def endpoint_url(self) -> str | None: ...

    def describe(self) -> dict[str, object]: ...
