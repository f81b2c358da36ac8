"""An HTTP request as a front (Function URL, HTTP API) receives it, and the answer it sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
TEXT_SUFFIXES = ("+json", "+xml")
# Headers of the connection, not of the answer: the server writes its own, a function's are dropped.
CONNECTION_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # as received, names in any case, repeated as sent
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(TEXT_TYPES) or kind.endswith(TEXT_SUFFIXES)



def request_of(scope: dict[str, Any]) -> HttpRequest:
    """The request an ASGI scope describes (its body is read later)."""
    client = scope.get("client") or ("", 0)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    return HttpRequest(
        method=scope["method"], raw_path=raw_path, raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers, body=b"", source_ip=client[0], protocol=f"HTTP/{scope.get('http_version', '1.1')}",
    )


def header(request: HttpRequest, name: str) -> str:
    """The first value of a header (`name` in lower case), or ""."""
    return next((v for k, v in request.headers if k.lower() == name), "")
