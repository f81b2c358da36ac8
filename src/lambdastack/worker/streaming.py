"""Following a response the runtime streams, from STREAM_START to its end.

The caller of InvokeWithResponseStream gives a `ResponseSink` that gets each chunk as the
environment's init relays it. A caller of Invoke gives none: the chunks are gathered and
the invocation ends as a buffered one would, its body up to Lambda's 6 MB limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Protocol

from lambdastack.runtime import protocol
from lambdastack.worker.environment import Environment, Frame

MAX_BUFFERED_RESPONSE = 6_291_556  # a synchronous (buffered) response, as on Lambda
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ResponseSink(Protocol):
    """Where the chunks of a streamed response go, as they arrive."""

    async def start(self, content_type: str) -> None: ...

    async def chunk(self, data: bytes) -> None: ...


async def follow_stream(env: Environment, start: dict[str, Any], sink: ResponseSink | None, deadline_ms: int) -> Frame:
    """Relay (or gather) a streamed response until it ends.

    Returns the frame that ends the invocation, in the form a buffered answer has: RESPONSE
    (the whole body when gathered, none when relayed), ERROR (an error the runtime sent as
    trailers, or one the init reported) or EXITED. Raises TimeoutError at the deadline,
    which also bounds how long a slow reader can hold the function back.
    """
    content_type = start.get("content_type") or DEFAULT_CONTENT_TYPE
    if sink is not None:
        async with asyncio.timeout(_remaining(deadline_ms)):
            await sink.start(content_type)
    gathered = bytearray()
    while True:
        kind, meta, body = await env.next_frame(_remaining(deadline_ms))
        if kind == protocol.STREAM_CHUNK:
            if sink is not None:
                async with asyncio.timeout(_remaining(deadline_ms)):
                    await sink.chunk(body)
                continue
            gathered += body
            if len(gathered) > MAX_BUFFERED_RESPONSE:
                message = (f"Response payload size exceeded maximum allowed payload size "
                           f"({MAX_BUFFERED_RESPONSE} bytes).")
                error = {"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}
                return protocol.ERROR, {"error_type": "Function.ResponseSizeTooLarge"}, json.dumps(error).encode()
        elif kind == protocol.STREAM_END:
            meta = dict(meta, content_type=content_type)
            if meta.get("error_type"):
                return protocol.ERROR, meta, body
            return protocol.RESPONSE, meta, bytes(gathered)
        else:  # ERROR or EXITED: the invocation ended another way
            return kind, meta, body


def _remaining(deadline_ms: int) -> float:
    return max(0.0, deadline_ms / 1000 - time.time())
