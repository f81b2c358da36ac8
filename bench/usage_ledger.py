"""What the usage ledger costs: CPU time of recording one invocation, and of a flush.

    python -m bench.usage_ledger [--calls 1000000] [--versions 100]

Recording runs on the event loop for every invocation (the key of the version and one
dictionary update); a flush runs in a thread every 10 s. Both are measured in CPU time
(process_time), which the other load of a shared machine does not inflate as it does wall time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import write_result
from lambdastack.invoke.usage import usage_key
from lambdastack.observe.usage.ledger import UsageLedger
from lambdastack.worker.spec import EnvironmentSpec


def _spec(i: int) -> EnvironmentSpec:
    return EnvironmentSpec(key=f"k{i}", function_name=f"fn{i}", version="$LATEST", runtime="python3.12",
                           handler="app.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, region="us-east-1",
                           account="000000000000", code_dir=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=100)
    args = parser.parse_args()
    specs = [_spec(i) for i in range(args.versions)]
    with tempfile.TemporaryDirectory() as folder:
        ledger = UsageLedger(Path(folder) / "usage.db")
        t0 = time.process_time()
        for n in range(args.calls):
            ledger.record(usage_key(specs[n % args.versions]), 12, None, False)
        record_ns = (time.process_time() - t0) / args.calls * 1e9
        t0 = time.process_time()
        buckets = ledger.flush()
        flush_ms = (time.process_time() - t0) * 1000
    document = {
        "calls": args.calls, "versions": args.versions, "record_cpu_ns": round(record_ns, 1),
        "flush_buckets": buckets, "flush_cpu_ms": round(flush_ms, 2), "load": os.getloadavg()[0],
    }
    print(document)
    write_result("usage_ledger", document)


if __name__ == "__main__":
    main()
