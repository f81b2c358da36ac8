"""`lambdastack deploy`: publish a new version and move an alias to it safely.

    lambdastack deploy my-fn --alias live --dir ./src --strategy canary --percent 10 --interval 5m

publishes the code as a new version (through the Lambda API, as any SDK would), starts a
deployment of it on the alias (`/_lambdastack/deployments`), and follows it live: a
progress bar with the new version's share of the traffic and both versions' health. The
exit status is 0 when the alias ends on the new version, 1 when the deployment was rolled
back (or stopped), 2 when it could not start.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, TextIO

from lambdastack.auth.client import signed_headers

SUCCEEDED = 0
ROLLED_BACK = 1
FAILED = 2
BAR_WIDTH = 24
QUIET_SECONDS = 5.0
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def add_parser(commands: Any) -> None:
    deploy = commands.add_parser(
        "deploy",
        help="publish a new version and move an alias to it by a strategy, rolling back on bad health",
        description="Publish a new version of a function from a zip or a directory (or take a published one) "
                    "and move an alias to it step by step, comparing the new version's error rate and p99 "
                    "duration with the old one's; the alias is rolled back automatically when they get worse.",
    )
    deploy.add_argument("function", help="function name or ARN")
    deploy.add_argument("--alias", required=True, help="the alias to move")
    source = deploy.add_mutually_exclusive_group(required=True)
    source.add_argument("--zip", type=Path, help="a .zip deployment package")
    source.add_argument("--dir", type=Path, help="a directory, zipped as it is")
    source.add_argument("--version", help="an already published version")
    deploy.add_argument("--strategy", choices=["all-at-once", "canary", "linear"], default="canary")
    deploy.add_argument("--percent", type=float, default=10.0,
                        help="canary: share of the traffic for the canary; linear: share added each step (10)")
    deploy.add_argument("--interval", type=duration, default=300.0,
                        help="canary: how long the canary runs; linear: time between steps (5m; 30s, 2m, 1h, 90)")
    deploy.add_argument("--max-error-rate-increase", type=float, default=0.05,
                        help="roll back when the new version's error rate exceeds the old one's by more (0.05)")
    deploy.add_argument("--max-p99-ratio", type=float, default=2.0,
                        help="roll back when the new version's p99 duration exceeds the old one's this many "
                             "times (plus --p99-slack-ms) (2.0)")
    deploy.add_argument("--p99-slack-ms", type=float, default=10.0)
    deploy.add_argument("--min-invocations", type=int, default=10,
                        help="invocations of the new version needed before its health is judged (10)")
    deploy.add_argument("--url", default=os.environ.get("LAMBDASTACK_URL", "http://127.0.0.1:9000"))
    deploy.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                        or "us-east-1")
    deploy.add_argument("--no-wait", action="store_true", help="start the deployment and return")
    deploy.set_defaults(func=run)


def duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 30s, 5m, 1h)")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def zip_directory(folder: Path) -> bytes:
    """The directory as a deployment package; the same files always make the same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100000 | (0o755 if os.access(path, os.X_OK) else 0o644)) << 16
            archive.writestr(info, path.read_bytes())
    return buf.getvalue()


def _lambda_client(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    credentials = {}
    if session.get_credentials() is None:  # any credentials will do for lambdastack
        credentials = {"aws_access_key_id": "lambdastack", "aws_secret_access_key": "lambdastack"}
    return session.client("lambda", endpoint_url=args.url, region_name=args.region,
                          config=Config(retries={"total_max_attempts": 2}), **credentials)


def _publish(client: Any, args: argparse.Namespace, out: TextIO) -> str:
    if args.version:
        return str(args.version)
    package = args.zip.read_bytes() if args.zip else zip_directory(args.dir)
    published = client.update_function_code(FunctionName=args.function, ZipFile=package, Publish=True)
    version = str(published["Version"])
    client.get_waiter("published_version_active").wait(FunctionName=args.function, Qualifier=version,
                                                       WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    print(f"published version {version} of {args.function} (CodeSha256 {published['CodeSha256']})", file=out)
    return version


def _request(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    method = "POST" if data else "GET"
    request = urllib.request.Request(url, data=data, method=method,
                                     headers=signed_headers(method, url, data, {"content-type": "application/json"}))
    return urllib.request.urlopen(request, timeout=30)


def _api_error(e: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(e.read())
        return f"{e.headers.get('x-amzn-ErrorType', e.code)}: {document.get('message') or document.get('Message')}"
    except ValueError:
        return f"HTTP {e.code}"


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    client = _lambda_client(args)
    try:
        version = _publish(client, args, out)
        try:
            alias = client.get_alias(FunctionName=args.function, Name=args.alias)
        except client.exceptions.ResourceNotFoundException:
            client.create_alias(FunctionName=args.function, Name=args.alias, FunctionVersion=version)
            print(f"created alias {args.alias} on version {version}: nothing to shift traffic from", file=out)
            return SUCCEEDED
    except (ClientError, BotoCoreError) as e:
        print(f"lambdastack deploy: {e}", file=sys.stderr)
        return FAILED
    if alias["FunctionVersion"] == version:
        print(f"alias {args.alias} already points to version {version}: nothing to deploy", file=out)
        return SUCCEEDED
    request = {
        "FunctionName": args.function,
        "AliasName": args.alias,
        "TargetVersion": version,
        "Region": args.region,
        "Strategy": _strategy(args),
        "Health": {
            "MaxErrorRateIncrease": args.max_error_rate_increase,
            "MaxP99Ratio": args.max_p99_ratio,
            "P99SlackMs": args.p99_slack_ms,
            "MinInvocations": args.min_invocations,
        },
    }
    base = args.url.rstrip("/") + "/_lambdastack/deployments"
    try:
        with _request(base, request) as response:
            deployment = json.loads(response.read())
    except urllib.error.HTTPError as e:
        print(f"lambdastack deploy: {_api_error(e)}", file=sys.stderr)
        return FAILED
    except OSError as e:
        print(f"lambdastack deploy: lambdastack is not answering at {args.url}: {e}", file=sys.stderr)
        return FAILED
    print(f"deployment {deployment['DeploymentId']}: alias {args.alias} from version "
          f"{deployment['FromVersion']} to {version}, {deployment['Strategy']['Description']}", file=out)
    if args.no_wait:
        return SUCCEEDED
    return follow(f"{base}/{deployment['DeploymentId']}/progress", out)


def _strategy(args: argparse.Namespace) -> dict[str, Any]:
    if args.strategy == "all-at-once":
        return {"Type": "AllAtOnce"}
    return {"Type": "Canary" if args.strategy == "canary" else "Linear", "Percent": args.percent,
            "IntervalSeconds": args.interval}


def follow(url: str, out: TextIO) -> int:
    """Show a deployment's progress until it ends; the exit status says how it ended."""
    live = out.isatty()
    shown_events = 0
    last_state: tuple[Any, ...] = ()
    last_time = 0.0
    document: dict[str, Any] = {}
    try:
        with _request(url) as stream:
            for raw in stream:
                if not raw.startswith(b"data: "):
                    continue
                document = json.loads(raw[len(b"data: "):])
                events = document["Progress"].get("Events") or []
                for event in events[shown_events:]:
                    print(("\r\x1b[2K" if live else "") + f"  {event['Message']}", file=out)
                shown_events = len(events)
                line = progress_line(document)
                if live:
                    print("\r\x1b[2K" + line, end="", file=out, flush=True)
                    continue
                # Not a terminal: a line when the step or the verdict changes, else every few seconds.
                state = (document["Weight"], document["Status"], line.rsplit(" | ", 1)[-1])
                if state != last_state or time.monotonic() - last_time >= QUIET_SECONDS:
                    print(line, file=out, flush=True)
                    last_state, last_time = state, time.monotonic()
    except (OSError, ValueError) as e:
        print(f"\nlambdastack deploy: lost the deployment's progress: {e}", file=sys.stderr)
        return FAILED
    if live:
        print(file=out)
    status = document.get("Status")
    print(f"{status}: {document.get('StatusReason')}", file=out)
    return SUCCEEDED if status == "Succeeded" else ROLLED_BACK


def progress_line(document: dict[str, Any]) -> str:
    weight = float(document.get("Weight") or 0.0)
    filled = round(weight * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    progress = document.get("Progress") or {}
    health = progress.get("Health") or {}
    parts = [f"[{bar}] {weight:4.0%} on v{document['ToVersion']}",
             f"step {progress.get('Step', 0)}/{progress.get('Steps', '?')}"]
    for key, version in (("New", document["ToVersion"]), ("Old", document["FromVersion"])):
        snapshot = health.get(key)
        if snapshot:
            p99 = snapshot.get("P99Ms")
            parts.append(f"v{version} {snapshot['Invocations']} inv {snapshot['ErrorRate']:.1%} err "
                         f"p99 {'-' if p99 is None else f'{p99:.1f}ms'}")
    if health:
        parts.append("healthy" if health.get("Judged") and health.get("Healthy")
                     else "UNHEALTHY" if not health.get("Healthy") else "not judged yet")
    return " | ".join(parts)
