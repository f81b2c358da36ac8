"""Match an HTTP request to a model operation by method, path template and fixed query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from lambdastack.service_models import Operation, ServiceModel


@dataclass(frozen=True)
class Route:
    operation: Operation
    pattern: re.Pattern[str]
    fixed_query: tuple[tuple[str, str | None], ...]
    labels: tuple[str, ...]

    @property
    def specificity(self) -> tuple[int, int]:
        # Routes with a fixed query (`?find=LayerVersion`) must win over the bare path.
        return (len(self.fixed_query), self.pattern.pattern.count("/"))


def _compile(op: Operation) -> Route:
    path, _, query = op.request_uri.partition("?")
    fixed: list[tuple[str, str | None]] = []
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        fixed.append((key, value if eq else None))
    labels: list[str] = []
    regex = ""
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            labels.append(name)
            regex += "(.+)" if greedy else "([^/]+)"  # labels may hold '-': no named groups
        else:
            regex += re.escape(piece)
    return Route(op, re.compile(f"^{regex}/?$"), tuple(fixed), tuple(labels))


Match = tuple[Operation, dict[str, str]]
CACHE_SIZE = 4096


class Router:
    def __init__(self, model: ServiceModel) -> None:
        routes = [_compile(op) for op in model.operations.values()]
        self._by_method: dict[str, list[Route]] = {}
        for route in sorted(routes, key=lambda r: r.specificity, reverse=True):
            self._by_method.setdefault(route.operation.method, []).append(route)
        # Only these query parameters take part in routing (`?find=LayerVersion`, `?List=ALL`).
        self._routing_keys = {key for route in routes for key, _ in route.fixed_query}
        self._cache: dict[tuple[str, str, tuple[tuple[str, str], ...]], Match | None] = {}

    def match(self, method: str, raw_path: str, query: list[tuple[str, str]]) -> Match | None:
        """Return the operation and its decoded path labels, or None for an unknown route."""
        routing = tuple(sorted((k, v) for k, v in query if k in self._routing_keys)) if query else ()
        key = (method, raw_path, routing)
        try:
            found = self._cache[key]
        except KeyError:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            found = self._cache[key] = self._match(method, raw_path, query)
        return None if found is None else (found[0], dict(found[1]))

    def _match(self, method: str, raw_path: str, query: list[tuple[str, str]]) -> Match | None:
        query_keys = {k: v for k, v in query}
        for route in self._by_method.get(method, ()):
            m = route.pattern.match(raw_path)
            if m is None:
                continue
            if any(
                key not in query_keys or (value is not None and query_keys[key] != value)
                for key, value in route.fixed_query
            ):
                continue
            return route.operation, {k: unquote(v) for k, v in zip(route.labels, m.groups(), strict=True)}
        return None


def parse_query(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
