"""Which stage and route of an HTTP API a request goes to, as API Gateway selects them.

Stage first: a path whose first segment names a stage goes to that stage (the segment is
removed); any other path goes to `$default`. Then the route, most specific first:
1. a full match of the path (no variables),
2. a match with path variables (`/items/{id}`), literal segments winning over variables,
3. a match with a greedy variable (`/{proxy+}`, one segment or more),
and for the same path, a route for the request's method before `ANY`. The `$default` route
catches what no other route matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from lambdastack.control import route_keys
from lambdastack.control.http_apis import DEFAULT_STAGE, ApiSnapshot
from lambdastack.store.http_apis import Document


@dataclass(frozen=True)
class _Route:
    document: Document
    key: route_keys.RouteKey
    rank: tuple[int, tuple[int, ...], int]


@dataclass(frozen=True)
class Selected:
    stage: Document
    route: Document
    path_parameters: dict[str, str]

    @property
    def resource(self) -> str:
        """The route's path (`/items/{id}`), or `$default`."""
        key: str = self.route["RouteKey"]
        return key.split(" ", 1)[1] if " " in key else key


def _rank(key: route_keys.RouteKey) -> tuple[int, tuple[int, ...], int]:
    greedy = any(s.greedy for s in key.segments)
    variables = any(s.variable for s in key.segments)
    kind = 2 if greedy else 1 if variables else 0
    return kind, tuple(1 if s.variable else 0 for s in key.segments), 1 if key.method == "ANY" else 0


class ApiRouter:
    """One API's stages and routes, ready to match requests."""

    def __init__(self, snapshot: ApiSnapshot) -> None:
        self.snapshot = snapshot
        routes = []
        self.default_route: Document | None = None
        for document in snapshot.routes:
            key = route_keys.parse(document["RouteKey"])
            if key.is_default:
                self.default_route = document
            else:
                routes.append(_Route(document, key, _rank(key)))
        self.routes = sorted(routes, key=lambda r: r.rank)

    def select(self, method: str, raw_path: str) -> Selected | None:
        stage, path = self._stage(raw_path)
        if stage is None:
            return None
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        for route in self.routes:
            if route.key.method not in (method, "ANY"):
                continue
            parameters = _match(route.key.segments, segments)
            if parameters is not None:
                return Selected(stage, route.document, parameters)
        if self.default_route is not None:
            return Selected(stage, self.default_route, {})
        return None

    def _stage(self, raw_path: str) -> tuple[Document | None, str]:
        first, _, rest = raw_path.lstrip("/").partition("/")
        stages = self.snapshot.stages
        if first and first != DEFAULT_STAGE and first in stages:
            return stages[first], "/" + rest
        return stages.get(DEFAULT_STAGE), raw_path


def _match(pattern: tuple[route_keys.Segment, ...], segments: list[str]) -> dict[str, str] | None:
    parameters: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part.greedy:
            rest = segments[i:]
            if not rest:
                return None
            parameters[part.text] = "/".join(rest)
            return parameters
        if i >= len(segments):
            return None
        if part.variable:
            parameters[part.text] = segments[i]
        elif part.text != segments[i]:
            return None
    return parameters if len(segments) == len(pattern) else None
