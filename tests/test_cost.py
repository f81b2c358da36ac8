"""The cost report: usage per function and version from real invocations, and AWS Lambda's bill for it.

Figures are checked against what the invocations themselves reported: the request count
exactly, GB-seconds from the REPORT lines' Billed Duration (read with LogType=Tail).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import Server, create_function, invoke, unique

from lambdastack.cost import prices
from lambdastack.observe.usage.ledger import UsageLedger

PRICES = json.loads((Path(__file__).parent.parent / "src/lambdastack/cost/prices.json").read_text())

SLEEPER = "import time\n\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'ok'\n"


@dataclass
class Used:
    """What the test's own invocations reported, per function."""

    memory_mb: int
    ephemeral_mb: int = 512
    billed_ms: list[int] = field(default_factory=list)
    init_ms: list[int] = field(default_factory=list)

    def gb_seconds(self) -> float:
        return sum(self.billed_ms) / 1000 * self.memory_mb / 1024


@dataclass
class Setup:
    server: Server
    data_dir: Path
    used: dict[str, Used]


def _invoke(lam: Any, name: str, used: Used, sleep: float) -> None:
    r = invoke(lam, name, {"sleep": sleep}, LogType="Tail")
    assert r.status == 200 and r.function_error is None, r.log
    report = [line for line in r.log.splitlines() if line.startswith("REPORT RequestId:")][-1]
    used.billed_ms.append(int(re.search(r"Billed Duration: (\d+) ms", report).group(1)))  # type: ignore[union-attr]
    init = re.search(r"Init Duration: ([\d.]+) ms", report)
    if init:
        used.init_ms.append(math.ceil(float(init.group(1))))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp("cost") / "data"
    server = Server(data_dir).start()
    lam = server.client()
    small = create_function(lam, SLEEPER, name=unique("cost-small"), MemorySize=128)
    large = create_function(lam, SLEEPER, name=unique("cost-large"), MemorySize=1024, Architectures=["arm64"],
                            EphemeralStorage={"Size": 2048})
    used = {small: Used(128), large: Used(1024, 2048)}
    for _ in range(4):
        _invoke(lam, small, used[small], 0.03)
    for _ in range(3):
        _invoke(lam, large, used[large], 0.06)
    setup = Setup(server, data_dir, used)
    yield setup
    setup.server.stop()


def _report(setup: Setup, **params: str) -> dict[str, Any]:
    r = requests.get(setup.server.url + "/_lambdastack/cost", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _line(report: dict[str, Any], name: str) -> dict[str, Any]:
    lines = [f for f in report["functions"] if f["functionName"] == name]
    assert len(lines) == 1, report["functions"]
    return lines[0]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lambdastack", "cost", *args], capture_output=True, text=True,
                          timeout=60)


def _check_figures(report: dict[str, Any], used: dict[str, Used]) -> None:
    for name, u in used.items():
        line = _line(report, name)
        assert line["requests"] == len(u.billed_ms)
        assert line["billedDurationMs"] == sum(u.billed_ms)
        assert line["initBilledDurationMs"] == sum(u.init_ms)
        assert line["gbSeconds"] == pytest.approx(u.gb_seconds(), abs=1e-6)
        assert line["memorySizeMB"] == u.memory_mb


def test_requests_and_gb_seconds_match_the_report_lines(setup: Setup) -> None:
    report = _report(setup)
    _check_figures(report, setup.used)
    small, large = setup.used
    assert _line(report, small)["architecture"] == "x86_64"
    assert _line(report, large)["architecture"] == "arm64"
    assert _line(report, small)["version"] == "$LATEST"
    # The first invocation of each was a cold start: its init is billed, as on Lambda since August 2025.
    assert len(setup.used[small].init_ms) >= 1 and len(setup.used[large].init_ms) >= 1
    # Storage above the free 512 MB, for the billed duration: 1.5 GB here.
    u = setup.used[large]
    assert _line(report, large)["ephemeralStorageGbSeconds"] == pytest.approx(sum(u.billed_ms) / 1000 * 1.5, abs=1e-6)
    assert _line(report, small)["ephemeralStorageGbSeconds"] == 0


def test_the_bill_uses_the_published_prices(setup: Setup) -> None:
    report = _report(setup)
    rates = PRICES["regions"]["us-east-1"]
    small, large = setup.used
    for name, arch in ((small, "x86_64"), (large, "arm64")):
        line = _line(report, name)
        per_gb_s = rates["architectures"][arch]["durationTiers"][0]["perGbSecond"]
        assert line["cost"]["requests"] == pytest.approx(line["requests"] * rates["requestsPerMillion"] / 1e6)
        assert line["cost"]["duration"] == pytest.approx(setup.used[name].gb_seconds() * per_gb_s, rel=1e-6)
        assert line["cost"]["total"] == pytest.approx(sum(v for k, v in line["cost"].items() if k != "total"))
    assert _line(report, large)["cost"]["ephemeralStorage"] == pytest.approx(
        _line(report, large)["ephemeralStorageGbSeconds"] * rates["ephemeralStoragePerGbSecond"], rel=1e-4)
    # Priced as arm64 in another region on request.
    arm = _report(setup, arch="arm64", region="eu-west-1")
    assert arm["pricedAs"] == {"region": "eu-west-1", "architecture": "arm64"}
    assert _line(arm, small)["priceArchitecture"] == "arm64" and _line(arm, small)["priceRegion"] == "eu-west-1"
    assert _line(arm, small)["cost"]["duration"] < _line(report, small)["cost"]["duration"]


def test_json_shape_and_free_tier(setup: Setup) -> None:
    report = _report(setup)
    assert report["prices"] == {"date": PRICES["date"], "source": PRICES["source"]}
    assert report["currency"] == "USD"
    total = report["total"]
    assert total["requests"] == sum(len(u.billed_ms) for u in setup.used.values())
    assert total["gbSeconds"] == pytest.approx(sum(u.gb_seconds() for u in setup.used.values()), abs=1e-5)
    assert total["cost"]["total"] == pytest.approx(sum(f["cost"]["total"] for f in report["functions"]))
    free = report["freeTier"]
    assert (free["requestsPerMonth"], free["gbSecondsPerMonth"]) == (1_000_000, 400_000)
    # So little usage is all within the free tier: requests and duration are credited, storage is not.
    assert free["requestsCovered"] == total["requests"]
    assert free["gbSecondsCovered"] == pytest.approx(total["gbSeconds"], abs=1e-5)
    bill = report["bill"]
    assert bill["beforeFreeTier"] == pytest.approx(total["cost"]["total"])
    assert bill["total"] == pytest.approx(bill["beforeFreeTier"] - bill["freeTierCredit"])
    assert bill["total"] == pytest.approx(total["cost"]["ephemeralStorage"], abs=1e-12)
    for line in report["functions"]:
        assert set(line) >= {"functionName", "version", "region", "architecture", "memorySizeMB", "requests",
                             "gbSeconds", "ephemeralStorageGbSeconds", "provisionedConcurrency", "cost"}


def test_function_filter_and_cli(setup: Setup) -> None:
    small = next(iter(setup.used))
    only = _report(setup, function=small)
    assert [f["functionName"] for f in only["functions"]] == [small]
    out = _cli("--url", setup.server.url, "--function", small)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith(small))
    assert re.search(rf"^{small}\s+\$LATEST\s+x86_64\s+128 MB\s+4\s+", row), out.stdout
    assert "Free tier" in out.stdout and PRICES["date"] in out.stdout
    as_json = _cli("--url", setup.server.url, "--function", small, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["functions"] == only["functions"]


def test_bad_input_is_a_clear_error(setup: Setup) -> None:
    for params, words in (({"since": "yesterday"}, "Invalid since value 'yesterday'"),
                          ({"region": "mars-1"}, "No AWS Lambda prices for region 'mars-1'"),
                          ({"arch": "sparc"}, "No AWS Lambda prices for architecture 'sparc'")):
        r = requests.get(setup.server.url + "/_lambdastack/cost", params=params, timeout=30)
        assert r.status_code == 400 and words in r.json()["message"], r.text
    for args, words in ((("--since", "3x"), "Invalid since value '3x'"),
                        (("--region", "mars-1"), "No AWS Lambda prices for region 'mars-1'")):
        out = _cli("--url", setup.server.url, *args)
        assert out.returncode == 1 and words in out.stderr and "Traceback" not in out.stderr, out.stderr
    out = _cli("--url", "http://127.0.0.1:9")
    assert out.returncode == 1 and "not answering" in out.stderr and "Traceback" not in out.stderr
    out = _cli("--arch", "sparc")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_provisioned_concurrency_is_metered(setup: Setup) -> None:
    lam = setup.server.client()
    name = create_function(lam, SLEEPER, name=unique("cost-pc"), MemorySize=256)
    version = lam.publish_version(FunctionName=name)["Version"]
    started = time.monotonic()
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
    deadline = time.monotonic() + 60
    while lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)["Status"] != "READY":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    billed = []
    for _ in range(2):
        r = invoke(lam, name, {"sleep": 0.01}, Qualifier=version, LogType="Tail")
        billed.append(int(re.search(r"Billed Duration: (\d+) ms", r.log).group(1)))  # type: ignore[union-attr]
        assert "Init Duration" not in r.log  # provisioned: initialized ahead
    time.sleep(3.0)
    line = _line(_report(setup, function=name), name)
    elapsed = time.monotonic() - started
    pc = line["provisionedConcurrency"]
    assert line["version"] == version and line["requests"] == 2 and pc["requests"] == 2
    assert pc["durationGbSeconds"] == pytest.approx(sum(billed) / 1000 / 4, abs=1e-6)
    assert line["gbSeconds"] == 0  # nothing ran on demand
    # Two environments ready through the 3 s slept above (seen within a second of being ready), and never
    # longer than the test ran.
    assert 2 * 1.5 <= pc["environmentSeconds"] <= 2 * elapsed
    assert pc["gbSeconds"] == pytest.approx(pc["environmentSeconds"] / 4, abs=1e-3)
    rates = PRICES["regions"]["us-east-1"]["architectures"]["x86_64"]
    assert line["cost"]["provisionedConcurrency"] == pytest.approx(
        pc["gbSeconds"] * rates["provisionedConcurrencyPerGbSecond"], rel=1e-3)
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_duration_tiers_apply_to_the_months_total() -> None:
    rates = prices.load().rates("us-east-1", "x86_64")
    first, second, third = (t["perGbSecond"] for t in PRICES["regions"]["us-east-1"]["architectures"]["x86_64"][
        "durationTiers"])
    assert rates.duration(1000) == pytest.approx(1000 * first)
    assert rates.duration(7e9) == pytest.approx(6e9 * first + 1e9 * second)
    # What was used earlier in the month has taken the first tier already.
    assert rates.duration(2e9, before=14e9) == pytest.approx(1e9 * second + 1e9 * third)


def test_figures_survive_a_restart_and_a_crash(setup: Setup) -> None:
    before = _report(setup)
    setup.server.stop()
    # With the server stopped, the data directory's ledger tells the same.
    offline = _cli("--data-dir", str(setup.data_dir), "--json")
    assert offline.returncode == 0, offline.stderr
    _check_figures(json.loads(offline.stdout), setup.used)
    setup.server = Server(setup.data_dir).start()
    after = _report(setup)
    assert after["functions"] == before["functions"]
    # Once reported (the report flushes the ledger), figures survive kill -9.
    lam = setup.server.client()
    small = next(iter(setup.used))
    _invoke(lam, small, setup.used[small], 0.01)
    _check_figures(_report(setup), setup.used)
    setup.server.kill()
    setup.server = Server(setup.data_dir).start()
    _check_figures(_report(setup), setup.used)


def test_since_filters_by_hour(setup: Setup) -> None:
    """Usage recorded three days ago counts in the last 30 days, not in the last day."""
    setup.server.stop()
    ledger = UsageLedger(setup.data_dir / "usage.db")
    old = unique("cost-old")
    three_days_ago = time.time() - 3 * 86400
    for _ in range(5):
        ledger.record(("000000000000", "us-east-1", old, "$LATEST", "x86_64", 128, 512), 100, None, False,
                      now=three_days_ago)
    ledger.flush()
    setup.server = Server(setup.data_dir).start()
    month = _report(setup, since="30d", function=old)
    assert _line(month, old)["requests"] == 5 and _line(month, old)["billedDurationMs"] == 500
    assert _report(setup, since="1d", function=old)["functions"] == []
    day = time.strftime("%Y-%m-%d", time.gmtime(three_days_ago - 86400))
    assert _line(_report(setup, since=day, function=old), old)["requests"] == 5
    # The functions invoked today are in the last hour.
    assert {f["functionName"] for f in _report(setup, since="1h")["functions"]} >= set(setup.used)
