"""How this server writes the addresses it serves functions at (`--url-host`, the API's port)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UrlNaming:
    host: str = "localhost"
    port: int = 9000

    def url(self, url_id: str, region: str) -> str:
        """A Function URL: `http://<url-id>.lambda-url.<region>.<host>:<port>/`."""
        return f"http://{url_id}.lambda-url.{region}.{self.host}:{self.port}/"

    def api_endpoint(self, api_id: str) -> str:
        """An HTTP API's endpoint: `http://<api-id>.execute-api.<host>:<port>`."""
        return f"http://{api_id}.execute-api.{self.host}:{self.port}"
