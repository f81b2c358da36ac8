"""What an event carries between its attempts, stored with it in the queue (as JSON).

It survives restarts with the event, so retries counted before a crash stay counted, and a
record that could not be delivered yet is delivered after one.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

# A response kept for a later record (after retries or expiry) is cut to this size.
KEPT_RESPONSE_BYTES = 256 * 1024


@dataclass
class LastResult:
    """The latest attempt's answer, for the record sent when the event finally fails."""

    status_code: int  # 200 for a function error, 429 throttled, 500 platform error
    executed_version: str | None = None
    function_error: str | None = None
    error_type: str | None = None
    error_message: str = ""
    response_b64: str = ""  # the function's response (payload), base64

    @property
    def response(self) -> bytes:
        return base64.b64decode(self.response_b64) if self.response_b64 else b""


@dataclass
class PendingDelivery:
    """A record or dead letter whose delivery failed and will be tried again."""

    kind: str  # "destination" or "dead-letter"
    target: str  # the ARN
    body: str  # the record (JSON) or the original event
    success: bool = False  # for records: which EventBridge detail type
    function_arn: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)  # dead letters: RequestID, ErrorCode, ErrorMessage
    attempts: int = 0
    dropped_as: str = ""  # the counter a final failure adds to


@dataclass
class EventState:
    function_errors: int = 0  # attempts that ended in a function error (they use up retries)
    backoffs: int = 0  # consecutive throttles / platform errors (exponential backoff)
    last: LastResult | None = None
    delivery: PendingDelivery | None = None
    trace: str | None = None  # the X-Ray trace header the event was queued with

    @classmethod
    def load(cls, text: str) -> EventState:
        data = orjson.loads(text or "{}")
        last = data.get("last")
        delivery = data.get("delivery")
        return cls(
            function_errors=int(data.get("function_errors", 0)),
            backoffs=int(data.get("backoffs", 0)),
            last=LastResult(**last) if last else None,
            delivery=PendingDelivery(**delivery) if delivery else None,
            trace=data.get("trace"),
        )

    def dump(self) -> str:
        return orjson.dumps(asdict(self)).decode()
