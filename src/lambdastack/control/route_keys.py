"""HTTP API route keys: `$default`, or a method and a path (`GET /items/{id}`, `ANY /{proxy+}`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lambdastack import errors

DEFAULT = "$default"
METHODS = ("ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_VARIABLE = re.compile(r"^\{([A-Za-z0-9._-]+)(\+?)\}$")


@dataclass(frozen=True)
class Segment:
    text: str  # the literal text, or the variable's name
    variable: bool = False
    greedy: bool = False


@dataclass(frozen=True)
class RouteKey:
    method: str  # "" for $default
    segments: tuple[Segment, ...]

    @property
    def is_default(self) -> bool:
        return self.method == ""


def parse(route_key: str) -> RouteKey:
    """The route key's parts; raises BadRequestException for a key API Gateway would refuse."""
    if route_key == DEFAULT:
        return RouteKey("", ())
    method, space, path = route_key.partition(" ")
    if not space or method not in METHODS:
        raise errors.BadRequest(
            f"Invalid route key '{route_key}': expected $default or an HTTP method ({', '.join(METHODS)}), "
            "a space and a path starting with '/'"
        )
    if not path.startswith("/") or " " in path or "?" in path:
        raise errors.BadRequest(f"Invalid route key '{route_key}': the path must start with '/' and have no "
                                "spaces or query string")
    if path == "/":
        return RouteKey(method, ())
    segments: list[Segment] = []
    pieces = path[1:].split("/")
    for i, piece in enumerate(pieces):
        if not piece:
            raise errors.BadRequest(f"Invalid route key '{route_key}': empty path segment")
        variable = _VARIABLE.match(piece)
        if variable is None:
            if "{" in piece or "}" in piece:
                raise errors.BadRequest(f"Invalid route key '{route_key}': a path variable must be a whole "
                                        "segment, {name} or {name+}")
            segments.append(Segment(piece))
            continue
        greedy = variable.group(2) == "+"
        if greedy and i != len(pieces) - 1:
            raise errors.BadRequest(f"Invalid route key '{route_key}': a greedy path variable must be the "
                                    "last segment")
        segments.append(Segment(variable.group(1), variable=True, greedy=greedy))
    names = [s.text for s in segments if s.variable]
    if len(names) != len(set(names)):
        raise errors.BadRequest(f"Invalid route key '{route_key}': path variables must have distinct names")
    return RouteKey(method, tuple(segments))
