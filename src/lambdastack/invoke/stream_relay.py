"""From a running invocation to InvokeWithResponseStream's events.

The relay is the invocation's `ResponseSink`: the worker hands it each chunk the function
streams, and the API response takes them out as `PayloadChunk` events, then ends with one
`InvokeComplete` (its `ErrorCode`/`ErrorDetails` when the function failed, `LogResult` with
`LogType=Tail`). Its queue is short: a reader that falls behind holds the function back
(within its timeout) instead of filling the server's memory.

A function that answers without streaming (any Python function, say) comes out as a single
`PayloadChunk`, as on Lambda.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

from lambdastack import errors
from lambdastack.worker.spec import InvokeOutcome

log = logging.getLogger("lambdastack.invoke")

QUEUE_DEPTH = 16
LOG_TAIL_BYTES = 4096
Event = dict[str, Any]


class StreamRelay:
    def __init__(self) -> None:
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_DEPTH)
        self._started = asyncio.Event()
        self.content_type: str | None = None

    # ---------------------------------------------------------------- the worker's side

    async def start(self, content_type: str) -> None:
        self.content_type = content_type
        self._started.set()

    async def chunk(self, data: bytes) -> None:
        if data:
            await self._chunks.put(data)

    # ---------------------------------------------------------------- the API's side

    async def head(self, invocation: asyncio.Task[InvokeOutcome]) -> str:
        """The content type, once the function started streaming or the invocation ended.

        Raises what the invocation raised before any byte was streamed (a throttle, say):
        that is still an ordinary error response.
        """
        started = asyncio.ensure_future(self._started.wait())
        try:
            await asyncio.wait({started, invocation}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
        if self._started.is_set():
            return self.content_type or "application/octet-stream"
        return invocation.result().content_type

    async def events(self, invocation: asyncio.Task[InvokeOutcome], log_tail: bool) -> AsyncIterator[Event]:
        streamed = self._started.is_set()
        if streamed:
            async for data in self._drain(invocation):
                yield {"PayloadChunk": {"Payload": data}}
        try:
            outcome = await invocation
        except errors.LambdaError as e:
            yield {"InvokeComplete": {"ErrorCode": e.code, "ErrorDetails": e.message}}
            return
        except Exception:
            log.exception("a streamed invocation failed")
            yield {"InvokeComplete": {"ErrorCode": "ServiceException", "ErrorDetails": "Internal error"}}
            return
        if not streamed and outcome.payload and outcome.function_error is None:
            yield {"PayloadChunk": {"Payload": outcome.payload}}
        complete: Event = {}
        if outcome.function_error is not None:
            complete["ErrorCode"] = outcome.error_type or outcome.function_error
            complete["ErrorDetails"] = outcome.payload.decode("utf-8", "replace")
        if log_tail:
            complete["LogResult"] = base64.b64encode(outcome.log[-LOG_TAIL_BYTES:]).decode()
        yield {"InvokeComplete": complete}

    async def _drain(self, invocation: asyncio.Task[InvokeOutcome]) -> AsyncIterator[bytes]:
        """Chunks until the invocation is over (by then every chunk is in the queue)."""
        while True:
            if not self._chunks.empty():
                yield self._chunks.get_nowait()
                continue
            if invocation.done():
                return
            take = asyncio.ensure_future(self._chunks.get())
            await asyncio.wait({take, invocation}, return_when=asyncio.FIRST_COMPLETED)
            if take.done():
                yield take.result()
            else:
                take.cancel()
