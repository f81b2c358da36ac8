"""Destination ARNs of asynchronous invocations: which service, and the resource in it."""

from __future__ import annotations

from dataclasses import dataclass

# Services a record may go to, by the ARN's service part.
SERVICES = {"sqs": "sqs", "sns": "sns", "lambda": "lambda", "events": "events", "s3": "s3"}


@dataclass(frozen=True)
class DestinationArn:
    arn: str
    service: str  # sqs | sns | lambda | events | s3
    region: str
    account: str
    resource: str  # queue name, topic name, "function:name[:qualifier]", "event-bus/name", bucket

    @property
    def bucket(self) -> str:
        return self.resource.split("/", 1)[0]

    @property
    def function(self) -> tuple[str, str | None]:
        """(name, qualifier) of a Lambda destination."""
        parts = self.resource.split(":")
        return parts[1], (parts[2] if len(parts) > 2 else None)


def parse_destination(arn: str) -> DestinationArn | None:
    """None when `arn` names nothing a record can be sent to."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in SERVICES or not parts[5]:
        return None
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    if service == "s3":
        if region or account or "/" in resource:
            return None
    elif not region or not account:
        return None
    elif service == "lambda":
        pieces = resource.split(":")
        if pieces[0] != "function" or len(pieces) not in (2, 3) or not pieces[1]:
            return None
    elif service == "events":
        if not resource.startswith("event-bus/") or resource == "event-bus/":
            return None
    elif ":" in resource or "/" in resource:
        return None
    return DestinationArn(arn, service, region, account, resource)
