"""What was acknowledged survives restarts and kill -9; what was not leaves no trace."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError
from helpers import ROLE, Server, make_zip, unique
from shapecheck import checked


def sha_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def code_for(name: str) -> bytes:
    # A package of its own per function, so each one has its own blob to lose or keep.
    return make_zip(
        {"app.py": f"NAME = {name!r}\ndef handler(e, c):\n    return NAME\n", "data.bin": name * 500}
    )


def blobs_on_disk(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "blobs").glob("*/*") if p.is_file()}


def test_everything_survives_a_restart(private_server: Any) -> None:
    srv: Server = private_server()
    lam = srv.client()
    name = unique()
    code = code_for(name)
    with checked(lam):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": code},
            Environment={"Variables": {"KEY": "value"}},
            Tags={"team": "core"},
        )
        lam.publish_version(FunctionName=name)
        lam.update_function_configuration(FunctionName=name, Timeout=42)
        lam.publish_version(FunctionName=name)
        lam.create_alias(
            FunctionName=name,
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
        )
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)
        west = srv.client(region="eu-west-1")
        west.create_function(
            FunctionName=name, Runtime="python3.13", Role=ROLE, Handler="app.handler", Code={"ZipFile": code}
        )
        before = lam.get_function(FunctionName=name)
        versions_before = lam.list_versions_by_function(FunctionName=name)["Versions"]

    assert srv.stop() == 0
    srv.start()
    lam = srv.client()
    with checked(lam):
        after = lam.get_function(FunctionName=name)
        assert after["Configuration"] == before["Configuration"]
        assert after["Tags"] == {"team": "core"}
        assert after["Concurrency"] == {"ReservedConcurrentExecutions": 5}
        assert requests.get(after["Code"]["Location"], timeout=10).content == code
        # A link handed out before the restart still works.
        assert requests.get(before["Code"]["Location"], timeout=10).content == code
        assert lam.list_versions_by_function(FunctionName=name)["Versions"] == versions_before
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.3}}
        assert lam.get_function_configuration(FunctionName=name, Qualifier="live")["Version"] == "1"
        assert (
            srv.client(region="eu-west-1").get_function(FunctionName=name)["Configuration"]["Runtime"]
            == "python3.13"
        )
        # Numbering carries on where it was.
        lam.update_function_configuration(FunctionName=name, Timeout=43)
        assert lam.publish_version(FunctionName=name)["Version"] == "3"
        lam.delete_function(FunctionName=name)
        # The package is still used in eu-west-1, so it stays.
        assert blobs_on_disk(srv.data_dir) == {hashlib.sha256(code).hexdigest()}


class Burst:
    """Client threads creating functions as fast as they can until the server dies."""

    def __init__(self, url: str, threads: int) -> None:
        self.url = url
        self.acked: dict[str, bytes] = {}  # got 201
        self.unanswered: dict[str, bytes] = {}  # sent, but no answer came back
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join(60)

    def _run(self) -> None:
        from helpers import client_for

        lam = client_for(self.url)
        while True:
            name = unique("burst")
            code = code_for(name)
            try:
                r = lam.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=ROLE,
                    Handler="app.handler",
                    Code={"ZipFile": code},
                    Environment={"Variables": {"NAME": name}},
                )
            except (BotoCoreError, ClientError, OSError):
                with self.lock:
                    self.unanswered[name] = code
                return
            assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
            with self.lock:
                self.acked[name] = code


def test_kill_9_during_a_burst_of_creates(private_server: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "crash"
    all_acked: dict[str, bytes] = {}
    all_unanswered: dict[str, bytes] = {}
    for round_ in range(3):
        srv: Server = private_server(data_dir=data_dir)
        burst = Burst(srv.url, threads=6)
        burst.start()
        deadline = time.monotonic() + 60
        while len(burst.acked) < 10 * (round_ + 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill()
        burst.join()
        assert burst.acked, srv.log()
        assert burst.unanswered, "the kill should have caught requests in flight"
        all_acked.update(burst.acked)
        all_unanswered.update(burst.unanswered)

    srv = private_server(data_dir=data_dir)
    lam = srv.client()
    with checked(lam):
        present = {
            f["FunctionName"]: f
            for page in lam.get_paginator("list_functions").paginate()
            for f in page["Functions"]
        }
        # Every acknowledged function is there; anything else was in flight when the server died.
        assert set(all_acked) <= set(present)
        assert set(present) - set(all_acked) <= set(all_unanswered)
        for name, conf in present.items():
            code = all_acked.get(name) or all_unanswered[name]
            assert conf["CodeSha256"] == sha_b64(code)
            assert conf["Environment"] == {"Variables": {"NAME": name}}
            assert lam.get_function_configuration(FunctionName=name)["State"] == "Active"  # lists show no State
            got = lam.get_function(FunctionName=name)
            assert requests.get(got["Code"]["Location"], timeout=10).content == code
        # Nothing half-written is kept: exactly the packages of the functions that exist.
        expected = {hashlib.sha256(all_acked.get(n) or all_unanswered[n]).hexdigest() for n in present}
        assert blobs_on_disk(data_dir) == expected
        assert {p.name for p in (data_dir / "code").iterdir()} == expected
        # Functions that did not make it can be created now.
        for name in set(all_unanswered) - set(present):
            lam.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": all_unanswered[name]},
            )
