"""lambdastack's own routes under `/_lambdastack/`: health, code downloads, and friends."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lambdastack.api.asgi import Receive, Scope, Send, send_response
from lambdastack.control.codeurls import ROUTE as CODE_ROUTE
from lambdastack.control.codeurls import CodeUrlSigner, InvalidToken


async def send_json(send: Send, status: int, document: Any) -> None:
    await send_response(send, status, [(b"content-type", b"application/json")], orjson.dumps(document))


def health_route(describe: Callable[[], dict[str, Any]]) -> Callable[[Scope, Receive, Send], Any]:
    async def health(scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, describe())

    return health


_CHUNK = 1 << 20


def code_download_route(
    signer: CodeUrlSigner, zip_path: Callable[[str], Path]
) -> Callable[[Scope, Receive, Send], Any]:
    """GET `/_lambdastack/code/<token>`: the zip behind a GetFunction `Code.Location`."""

    async def download(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_json(send, 405, {"message": "Method not allowed"})
            return
        token = scope["path"][len(CODE_ROUTE) :]
        try:
            sha_hex = signer.verify(token)
        except InvalidToken as e:
            await send_json(send, 403, {"Code": "AccessDenied", "message": f"Access denied: {e}"})
            return
        loop = asyncio.get_running_loop()
        try:
            f = await loop.run_in_executor(None, open, zip_path(sha_hex), "rb")
        except FileNotFoundError:
            await send_json(send, 404, {"Code": "NoSuchKey", "message": "The code package no longer exists."})
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/zip"),
                        (b"content-length", str(size).encode()),
                    ],
                }
            )
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b""})
                return
            while True:
                chunk = await loop.run_in_executor(None, f.read, _CHUNK)
                more = len(chunk) == _CHUNK
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break

    return download
