"""CORS as a Function URL's or an HTTP API's configuration says (AllowOrigins, AllowMethods, ...)."""

from __future__ import annotations

from typing import Any


def is_preflight(method: str, origin: str, requested_method: str) -> bool:
    """An OPTIONS request a browser sends before the real one: answered without invoking."""
    return method == "OPTIONS" and bool(origin) and bool(requested_method)


def allowed_origin(cors: dict[str, Any], origin: str) -> str | None:
    origins = cors.get("AllowOrigins") or []
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def headers(cors: dict[str, Any], origin: str) -> list[tuple[str, str]]:
    allowed = allowed_origin(cors, origin)
    if allowed is None:
        return []
    out = [("access-control-allow-origin", allowed)]
    if cors.get("ExposeHeaders"):
        out.append(("access-control-expose-headers", ",".join(cors["ExposeHeaders"])))
    if cors.get("AllowCredentials"):
        out.append(("access-control-allow-credentials", "true"))
    if allowed != "*":
        out.append(("vary", "Origin"))
    return out


def preflight_headers(cors: dict[str, Any], origin: str) -> list[tuple[str, str]]:
    out = headers(cors, origin)
    if not out:
        return []
    if cors.get("AllowMethods"):
        out.append(("access-control-allow-methods", ",".join(cors["AllowMethods"])))
    if cors.get("AllowHeaders"):
        out.append(("access-control-allow-headers", ",".join(cors["AllowHeaders"])))
    if cors.get("MaxAge") is not None:
        out.append(("access-control-max-age", str(cors["MaxAge"])))
    return out
