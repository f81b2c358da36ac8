"""What the asynchronous path has been doing lately, for `/_lambdastack/async`.

Durable totals (succeeded, retries, dropped by reason, delivery failures) live with the
queue; this keeps the moment's picture: events running per function, and the latest
drops and failed deliveries with their reasons.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from lambdastack.store.event_queue import FunctionKey

RECENT = 100


class AsyncActivity:
    def __init__(self) -> None:
        self.in_flight: collections.Counter[FunctionKey] = collections.Counter()
        self.recent_drops: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)
        self.recent_delivery_failures: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT)

    def dropped(self, key: FunctionKey, request_id: str, reason: str, at: float) -> None:
        self.recent_drops.append(
            {"functionName": key.name, "region": key.region, "requestId": request_id, "reason": reason, "at": at}
        )

    def delivery_failed(self, key: FunctionKey, request_id: str, target: str, error: str, at: float) -> None:
        self.recent_delivery_failures.append({
            "functionName": key.name, "region": key.region, "requestId": request_id, "target": target,
            "error": error, "at": at,
        })

    @staticmethod
    def about(entries: Iterable[dict[str, Any]], name: str | None) -> list[dict[str, Any]]:
        return [e for e in entries if name is None or e["functionName"] == name]
