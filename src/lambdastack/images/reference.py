"""Image references: `registry[:port]/repository(:tag|@sha256:digest)`.

The grammar is the distribution project's (docker/distribution `reference`). As on Lambda,
an ImageUri names its registry and carries a tag or a digest; `repo:tag` alone is refused.
Registries on the loopback interface are spoken to in plain HTTP, all others over HTTPS.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:.]+\])"
_REFERENCE = re.compile(
    rf"^(?P<registry>{_HOST}(?::[0-9]{{1,5}})?)/(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")

# Docker Hub's name and the host that serves its distribution API.
_ALIASES = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


class InvalidReference(ValueError):
    """The text is not an image reference lambdastack can pull."""


@dataclass(frozen=True)
class ImageReference:
    registry: str  # as written: "127.0.0.1:5000", "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    repository: str  # "team/app"
    tag: str | None = None
    digest: str | None = None  # "sha256:<hex>"

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        match = _REFERENCE.match(text or "")
        if match is None or not (match["tag"] or match["digest"]):
            raise InvalidReference(text)
        registry = match["registry"]
        if "." not in registry and ":" not in registry and registry != "localhost":
            raise InvalidReference(text)  # `team/app:tag` has no registry
        return cls(registry, match["repository"], match["tag"], match["digest"])

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def host(self) -> str:
        """host[:port] of the distribution API."""
        return _ALIASES.get(self.registry, self.registry)

    @property
    def base_url(self) -> str:
        scheme = "http" if is_loopback(self.registry) else "https"
        return f"{scheme}://{self.host}"

    def pinned(self, digest: str) -> str:
        """The reference to exactly this content: what Lambda calls ResolvedImageUri."""
        return f"{self.registry}/{self.repository}@{digest}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback(registry: str) -> bool:
    host = registry
    if host.startswith("["):
        host = host[1:host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
