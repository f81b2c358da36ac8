"""The composition root: build every part of the platform and wire them together."""

from __future__ import annotations

from typing import Any

from lambdastack import __version__
from lambdastack.api.asgi import LambdaApi
from lambdastack.api.internal import health_route
from lambdastack.config import Settings


def build_app(settings: Settings) -> LambdaApi:
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    def describe() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    return LambdaApi(
        operations={},
        internal={"/_lambdastack/health": health_route(describe)},
        account=settings.account_id,
        default_region=settings.region,
    )
