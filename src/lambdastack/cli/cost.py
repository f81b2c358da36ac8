"""`lambdastack cost`: usage per function and version, and what AWS Lambda would bill for it.

From a running server (`--url`, its `GET /_lambdastack/cost`), or straight from a data
directory's ledger (`--data-dir`) when the server is stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from lambdastack.auth.client import signed_headers
from lambdastack.cost.prices import ARCHITECTURES


def add_parser(commands: Any) -> None:
    cost = commands.add_parser("cost", help="what functions used, and what AWS Lambda would bill for it")
    cost.add_argument("--since", default="30d", help="a span back from now (30d, 12h, 90m, 2w) or a date (2026-12-01)")
    cost.add_argument("--function", help="only this function")
    cost.add_argument("--region", help="price as in this AWS region (default: each function's own)")
    cost.add_argument("--arch", choices=ARCHITECTURES, help="price as this architecture (default: each function's)")
    cost.add_argument("--json", action="store_true", help="print the report as JSON")
    source = cost.add_mutually_exclusive_group()
    source.add_argument("--url", default="http://127.0.0.1:9000", help="a running server (default: %(default)s)")
    source.add_argument("--data-dir", help="read a data directory's ledger instead of asking a server")
    cost.set_defaults(func=run)


def _from_server(args: argparse.Namespace) -> dict[str, Any]:
    query = {k: v for k, v in (("since", args.since), ("function", args.function), ("region", args.region),
                               ("arch", args.arch)) if v}
    url = args.url.rstrip("/") + "/_lambdastack/cost?" + urllib.parse.urlencode(query)
    try:
        request = urllib.request.Request(url, headers=signed_headers("GET", url, None, {}))
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("message")
        except ValueError:
            message = None
        raise _Failure(message or f"the server answered {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise _Failure(f"lambdastack is not answering at {args.url}: {e}") from None


def _from_data_dir(args: argparse.Namespace) -> dict[str, Any]:
    from lambdastack.cost import prices
    from lambdastack.cost.report import build_report
    from lambdastack.cost.since import parse_since
    from lambdastack.observe.usage.ledger import read_rows

    folder = Path(args.data_dir).expanduser()
    if not folder.is_dir():
        raise _Failure(f"no data directory at {folder}")
    now = time.time()
    since = parse_since(args.since, now)
    rows = read_rows(folder / "usage.db", since, args.function)
    return build_report(rows, prices.load(), since, now, args.region, args.arch)


class _Failure(Exception):
    pass


def run(args: argparse.Namespace) -> int:
    from lambdastack.cost.prices import PriceError
    from lambdastack.cost.since import SinceError
    from lambdastack.cost.table import render

    try:
        report = _from_data_dir(args) if args.data_dir else _from_server(args)
    except (_Failure, SinceError, PriceError) as e:
        print(f"lambdastack cost: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(render(report))
    return 0
