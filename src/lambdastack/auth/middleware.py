"""`serve --auth sigv4`: every API request must carry a valid SigV4 signature.

Wraps the server's APIs (not Function URLs or HTTP APIs, which keep their own auth types).
The body is read first (the signature covers its hash), checked, then handed on unchanged.
A refused request gets AWS's error: its code in `x-amzn-ErrorType` and the body (rest-json and
json protocols both read one of them), status 403 (400 for a malformed header). An accepted
one carries its principal in the ASGI scope (`PRINCIPAL`): the API takes the caller's account
from it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from lambdastack.api.asgi import MAX_REQUEST_BYTES, Receive, Scope, Send, send_response
from lambdastack.identity.signatures import SignatureRefused, SignatureVerifier

PRINCIPAL = "lambdastack.principal"
MODES = ("none", "sigv4")


class SignedRequests:
    def __init__(self, app: Any, verifier: SignatureVerifier, open_paths: Collection[str] = (),
                 open_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.verifier = verifier
        self.open_paths = frozenset(open_paths)  # exact paths answered unsigned (the health route)
        self.open_prefixes = open_prefixes  # routes with a check of their own (presigned code URLs, webhooks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path in self.open_paths or path.startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive, MAX_REQUEST_BYTES)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        try:
            if more:  # no API takes a body this large; answered without reading the rest
                raise SignatureRefused("RequestEntityTooLargeException",
                                       f"Request must be smaller than {MAX_REQUEST_BYTES} bytes", 413)
            principal = self.verifier.check(method=scope["method"], raw_path=raw_path,
                                            raw_query=scope.get("query_string", b"").decode("latin-1"),
                                            headers=headers, body=body, service=None)
        except SignatureRefused as refused:
            payload = orjson.dumps({"__type": refused.code, "Type": "User", "message": refused.message})
            await send_response(send, refused.status, [(b"content-type", b"application/json"),
                                                       (b"x-amzn-errortype", refused.code.encode())], payload)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app({**scope, PRINCIPAL: principal}, replay, send)


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether more follows (the API refuses it as too large)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), False
    return b"".join(chunks), True
