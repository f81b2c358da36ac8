"""moto in server mode on a free loopback port: the SQS/SNS/EventBridge/S3 (and more) that tests
point lambdastack at with `serve --aws-endpoint-url`, as users point it at AWS or LocalStack."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from helpers import REGION, Server, free_port, wait_for


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return requests.get(url + "/moto-api/", timeout=1).status_code < 500
            except requests.RequestException:
                return False
        assert wait_for(up, timeout=30), "moto did not start"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


class Aws:
    """boto3 clients of the moto server, and the resources a test makes there."""

    def __init__(self, url: str) -> None:
        kwargs = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        self.sqs = boto3.client("sqs", **kwargs)
        self.sns = boto3.client("sns", **kwargs)
        self.events = boto3.client("events", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)

    def queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def messages(self, url: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            got += self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                            MessageAttributeNames=["All"]).get("Messages", [])
        assert len(got) >= count, f"expected {count} messages, got {got}"
        return got


@pytest.fixture(scope="session")
def aws(moto_url: str) -> Aws:
    return Aws(moto_url)


@pytest.fixture(scope="module")
def moto_backed_server(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[Server]:
    """A server of the test module's own, its AWS-side endpoint (`--aws-endpoint-url`) the moto server."""
    server = Server(tmp_path_factory.mktemp("moto-backed") / "data", "--aws-endpoint-url", moto_url).start()
    yield server
    server.stop()
