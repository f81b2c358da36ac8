"""Server settings: what `lambdastack serve` was asked to do."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lambdastack.file_systems import FileSystemMapping


def default_data_dir() -> Path:
    return Path(os.environ.get("LAMBDASTACK_DATA_DIR", Path.home() / ".lambdastack"))


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 9000
    data_dir: Path = field(default_factory=default_data_dir)
    account_id: str = "000000000000"
    region: str = "us-east-1"
    # auto | namespaces | userns | process: how environments are isolated.
    isolation: str = "auto"
    # Seconds an idle environment is kept warm before it is reaped.
    idle_timeout: float = 600.0
    # Environments built ahead of demand per runtime in use, so a cold start only assigns one.
    prebuilt: int = 2
    # New environments per function per 10 seconds (Lambda's scaling rate).
    scaling_per_10s: int = 1000
    # Charge environments their full MemorySize within this sum (MB); None: admit them by real use.
    memory_budget_mb: int | None = None
    # Memory (MB) lambdastack considers for environments; None: the host's.
    memory_limit_mb: int | None = None
    # Memory kept free for the host and the platform: "MB" or "N%" of the memory considered.
    memory_reserve: str | None = None
    log_level: str = "info"
    # Concurrent executions the account may run per region (AccountLimit.ConcurrentExecutions).
    account_concurrency: int = 1000
    # Every delay of asynchronous invocation (retry waits, backoff, maximum event age) is
    # multiplied by this; 1 is Lambda's own timing.
    async_time_scale: float = 1.0
    # Asynchronous events run at once (all functions together); one function gets a quarter.
    async_concurrency: int = 32
    # Where SQS / SNS / EventBridge / S3 destinations and dead-letter queues are reached
    # (an AWS-compatible endpoint); None: boto3's own AWS endpoints.
    aws_endpoint_url: str | None = None
    # The CPU wake-up latency (µs) asked of the kernel's PM QoS while invocations flow;
    # None: ask nothing (see worker/cpu_latency.py).
    cpu_latency_us: int | None = None  # opt-in: a host-wide power setting is the operator's choice
    # Environments' network (see network/): public | private | none, the host ports they may
    # reach at host.lambdastack.internal, and whose resolvers answer their DNS.
    egress: str = "public"
    allow_host_ports: tuple[int, ...] = ()
    resolv_conf: Path = Path("/etc/resolv.conf")
    # The host name Function URLs are written with (http://<id>.lambda-url.<region>.<url_host>:<port>/).
    url_host: str = "localhost"
    # Access keys (id -> secret) whose SigV4 signatures AWS_IAM Function URLs accept.
    access_keys: tuple[tuple[str, str], ...] = ()
    # none: any request is served; sigv4: the APIs need a valid SigV4 signature (auth/).
    auth: str = "none"
    # The token S3-compatible stores' webhook notifications carry (None: the route is closed).
    s3_webhook_token: str | None = None
    # RabbitMQ brokers by the name an Amazon MQ broker ARN carries: (name, amqp:// URL).
    mq_brokers: tuple[tuple[str, str], ...] = ()
    # EFS access points by ARN, each a host directory (`--file-system ARN=DIR[:UID:GID]`).
    file_systems: tuple[FileSystemMapping, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"
