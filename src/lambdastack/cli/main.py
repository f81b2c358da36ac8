"""`lambdastack serve` and friends."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lambdastack import __version__
from lambdastack.cli import cost as cost_command
from lambdastack.cli import deploy as deploy_command
from lambdastack.cli import keys as keys_command
from lambdastack.config import Settings, default_data_dir
from lambdastack.file_systems import FileSystemMapping, parse_mapping


def _serve(args: argparse.Namespace) -> int:
    from lambdastack.server import serve

    settings = Settings(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir).expanduser().resolve(),
        account_id=args.account_id,
        region=args.region,
        isolation=args.isolation,
        idle_timeout=args.idle_timeout,
        prebuilt=args.prebuilt,
        scaling_per_10s=args.scaling_rate,
        memory_budget_mb=args.memory_budget,
        memory_limit_mb=args.memory_limit,
        memory_reserve=args.memory_reserve,
        log_level=args.log_level,
        account_concurrency=args.account_concurrency,
        async_time_scale=args.async_time_scale,
        async_concurrency=args.async_concurrency,
        aws_endpoint_url=args.aws_endpoint_url,
        cpu_latency_us=args.cpu_latency_us,
        egress=args.egress,
        allow_host_ports=tuple(args.allow_host_port),
        resolv_conf=Path(args.resolv_conf),
        url_host=args.url_host,
        access_keys=tuple(args.access_key),
        auth=args.auth,
        s3_webhook_token=args.s3_webhook_token or os.environ.get("LAMBDASTACK_S3_WEBHOOK_TOKEN") or None,
        mq_brokers=tuple(args.mq_broker),
        file_systems=tuple(args.file_system),
    )
    return serve(settings)


def _broker(text: str) -> tuple[str, str]:
    name, equals, url = text.partition("=")
    if not equals or not name or not url.startswith(("amqp://", "amqps://")):
        raise argparse.ArgumentTypeError("expected NAME=amqp://host:port")
    return name, url


def _file_system(text: str) -> FileSystemMapping:
    try:
        return parse_mapping(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _access_key(text: str) -> tuple[str, str]:
    key, colon, secret = text.partition(":")
    if not colon or not key or not secret:
        raise argparse.ArgumentTypeError("expected ID:SECRET")
    return key, secret


def _latency(text: str) -> int | None:
    if text == "off":
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more microseconds, or off")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number, 1 to 65535")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _memory_reserve(text: str) -> str:
    from lambdastack.worker.memory.admission import parse_reserve

    try:
        parse_reserve(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"MB or a percentage (e.g. 2048 or 15%): {e}") from None
    return text


def _status(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    url = args.url.rstrip("/") + "/_lambdastack/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            health = json.loads(response.read())
    except (urllib.error.URLError, OSError) as e:
        print(f"lambdastack is not answering at {args.url}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(health, indent=2))
        return 0
    print(f"lambdastack {health.get('version')} at {args.url}: {health.get('status')}")
    print(f"  isolation     {health.get('isolation', 'unknown')}")
    print(f"  runtimes      {', '.join(health.get('runtimes', []))}")
    print(f"  environments  {health.get('environments', 0)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lambdastack", description="A self-hosted AWS Lambda.")
    parser.add_argument("--version", action="version", version=f"lambdastack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the platform (API, control plane and workers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--data-dir", default=str(default_data_dir()))
    serve.add_argument("--account-id", default="000000000000")
    serve.add_argument("--region", default="us-east-1", help="region used when a request is not signed")
    serve.add_argument(
        "--isolation",
        choices=["auto", "namespaces", "userns", "process"],
        default="auto",
        help="how execution environments are isolated (auto picks the strongest available)",
    )
    serve.add_argument("--idle-timeout", type=float, default=600.0, help="seconds before an idle environment is reaped")
    serve.add_argument("--prebuilt", type=int, default=2,
                       help="environments built ahead of demand per runtime in use, at least; the pool grows "
                            "after bursts of cold starts (0: build on demand)")
    serve.add_argument("--scaling-rate", type=int, default=1000,
                       help="new environments a function may add per 10 seconds (Lambda's scaling rate)")
    serve.add_argument("--memory-budget", type=_positive_int, default=None,
                       help="charge environments their full MemorySize, all together within MB "
                            "(default: admit them by the memory they really use)")
    serve.add_argument("--memory-limit", type=_positive_int, default=None, metavar="MB",
                       help="memory lambdastack considers for its environments (default: the host's)")
    serve.add_argument("--memory-reserve", type=_memory_reserve, default=None, metavar="MB|N%",
                       help="memory kept free for the host and the platform "
                            "(default: 10%% of the memory considered, at least 1 GiB of a whole host)")
    serve.add_argument(
        "--account-concurrency",
        type=int,
        default=1000,
        help="concurrent executions the account may run per region (Lambda's default quota is 1000)",
    )
    serve.add_argument("--async-time-scale", type=_positive_float, default=1.0,
                       help="multiply every asynchronous-invocation delay (retry waits, backoff, maximum event age)"
                       " by this; e.g. 0.01 turns Lambda's one-minute retry wait into 0.6 s")
    serve.add_argument("--async-concurrency", type=int, default=32,
                       help="asynchronous events run at once, all functions together (one function gets a quarter"
                       " of them, less if its reserved concurrency is lower)")
    serve.add_argument("--aws-endpoint-url", default=None,
                       help="AWS-compatible endpoint for SQS/SNS/EventBridge/S3 destinations and dead-letter queues")
    serve.add_argument("--cpu-latency-us", type=_latency, default=None, metavar="US|off",
                       help="while invocations flow (and 2 s after), ask the kernel (PM QoS, /dev/cpu_dma_latency) "
                       "to keep CPUs in idle states that wake within this many microseconds (0: idle CPUs poll during "
                       "traffic); off (the default) asks nothing")
    serve.add_argument("--egress", choices=["public", "private", "none"], default="public",
                       help="where functions may connect: public addresses (Lambda's default), also private ranges, "
                       "or nowhere (loopback only); never the host or other environments")
    serve.add_argument("--allow-host-port", type=_port, action="append", default=[], metavar="PORT",
                       help="let functions reach this host's service on PORT at host.lambdastack.internal "
                       "(repeatable; the service may listen on loopback)")
    serve.add_argument("--resolv-conf", default="/etc/resolv.conf", metavar="PATH",
                       help="the resolv.conf whose first IPv4 nameserver answers functions' DNS queries")
    serve.add_argument("--url-host", default="localhost", metavar="NAME",
                       help="the name Function URLs are written with: http://<id>.lambda-url.<region>.NAME:<port>/ "
                       "(for a server reached by another name than localhost)")
    serve.add_argument("--access-key", type=_access_key, action="append", default=[], metavar="ID:SECRET",
                       help="an access key whose SigV4 signatures AWS_IAM Function URLs accept (repeatable)")
    serve.add_argument("--auth", choices=["none", "sigv4"], default="none",
                       help="sigv4: every API request needs a valid SigV4 signature of a key made with "
                       "`lambdastack keys create` (or --access-key), or of a function's own credentials "
                       "(default: none, any request is served)")
    serve.add_argument("--s3-webhook-token", default=None, metavar="TOKEN",
                       help="open /_lambdastack/s3-events/ to S3-compatible stores' webhooks that carry this token "
                            "(or set LAMBDASTACK_S3_WEBHOOK_TOKEN)")
    serve.add_argument("--mq-broker", type=_broker, action="append", default=[], metavar="NAME=amqp://HOST:PORT",
                       help="the RabbitMQ broker an Amazon MQ broker ARN's name stands for (repeatable)")
    serve.add_argument("--file-system", type=_file_system, action="append", default=[],
                       metavar="ARN=DIR[:UID:GID]",
                       help="the host directory an EFS access point ARN stands for, mounted read-write at the "
                       "LocalMountPath of every function that names it; UID:GID is the access point's POSIX user "
                       "(default 1000:1000) (repeatable)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    status = commands.add_parser("status", help="show a running server's health, isolation and runtimes")
    status.add_argument("--url", default="http://127.0.0.1:9000")
    status.add_argument("--json", action="store_true", help="print the raw health document")
    status.set_defaults(func=_status)

    deploy_command.add_parser(commands)
    cost_command.add_parser(commands)
    keys_command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
