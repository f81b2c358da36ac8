"""`lambdastack keys`: the access keys `serve --auth sigv4` accepts.

They live in the data directory (`auth/keys.py`); a running server sees a change at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lambdastack.auth.keys import KeyStore
from lambdastack.config import default_data_dir


def add_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="access keys of the server's APIs (for serve --auth sigv4)")
    actions = keys.add_subparsers(dest="keys_action", required=True)

    def action(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text)
        parser.add_argument("--data-dir", default=str(default_data_dir()), help="the server's data directory")
        parser.add_argument("--json", action="store_true", help="print JSON")
        return parser

    create = action("create", "make a key; prints its id and secret (the only time the secret is shown)")
    create.add_argument("--account", default="000000000000", help="the 12-digit account the key acts in")
    create.add_argument("--name", help="the IAM user name the key stands for (ARNs: user/NAME)")
    create.set_defaults(func=_create)
    action("list", "list keys (never their secrets)").set_defaults(func=_list)
    disable = action("disable", "stop a key working (at the server's next request)")
    disable.add_argument("access_key_id")
    disable.set_defaults(func=_disable)
    enable = action("enable", "let a disabled key work again")
    enable.add_argument("access_key_id")
    enable.set_defaults(func=_enable)
    delete = action("delete", "remove a key for good")
    delete.add_argument("access_key_id")
    delete.set_defaults(func=_delete)


def _store(args: argparse.Namespace) -> KeyStore:
    return KeyStore(Path(args.data_dir).expanduser().resolve())


def _create(args: argparse.Namespace) -> int:
    try:
        key, secret = _store(args).create(args.account, args.name)
    except ValueError as e:
        print(f"lambdastack keys create: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": secret, "Account": key.account}))
    else:
        print(f"AccessKeyId      {key.access_key_id}\nSecretAccessKey  {secret}\nAccount          {key.account}")
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = _store(args).list()
    if args.json:
        print(json.dumps({"AccessKeys": [k.as_json() for k in keys]}, indent=2))
        return 0
    for k in keys:
        print(f"{k.access_key_id}  {k.account}  {k.status:8}  {k.as_json()['CreateDate']}  {k.name or ''}")
    return 0


def _change(args: argparse.Namespace, done: bool) -> int:
    if not done:
        print(f"lambdastack keys {args.keys_action}: no access key {args.access_key_id}", file=sys.stderr)
        return 1
    return 0


def _disable(args: argparse.Namespace) -> int:
    return _change(args, _store(args).set_status(args.access_key_id, "Inactive"))


def _enable(args: argparse.Namespace) -> int:
    return _change(args, _store(args).set_status(args.access_key_id, "Active"))


def _delete(args: argparse.Namespace) -> int:
    return _change(args, _store(args).delete(args.access_key_id))
