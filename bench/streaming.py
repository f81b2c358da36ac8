"""Response streaming benchmark: time to first byte, round-trip cost, bandwidth.

    python -m bench.streaming [--runs 200] [--large-mb 16]

A custom runtime (`provided.al2023`, a bootstrap in Python's standard library) streams its
responses. Measured through the HTTP API on a keep-alive connection, reading the
event-stream as it arrives (the bytes are counted, the events are not decoded):

- first byte vs end: a function that writes a chunk, works 100 ms, writes another. The
  first chunk reaches the caller long before the end (a buffered answer would not).
- warm round trip of a small answer: Invoke of a Python no-op, InvokeWithResponseStream of
  the same function (one chunk), and of the streaming bootstrap.
- bandwidth of a large stream: the first 6 MB go as fast as the function writes them, the
  rest at most 2 MB/s, as on Lambda.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import time
import zipfile
from typing import Any

from bench.common import NOOP, BenchServer, Invoker, percentile, write_result, zip_of

ROLE = "arn:aws:iam::000000000000:role/bench"
MIB = 1024 * 1024

BOOTSTRAP = r'''#!/usr/bin/env python3
import http.client, json, os, time

HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(HOST, int(PORT))
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    reply = api.getresponse()
    rid = reply.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(reply.read())
    api.putrequest("POST", "/2018-06-01/runtime/invocation/" + rid + "/response")
    api.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    api.putheader("Transfer-Encoding", "chunked")
    api.endheaders()
    piece = b"x" * event.get("piece", 16)
    for i in range(event.get("pieces", 1)):
        if i and event.get("work_ms"):
            time.sleep(event["work_ms"] / 1000)
        api.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    api.send(b"0\r\n\r\n")
    api.getresponse().read()
'''


def bootstrap_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        z.writestr(info, BOOTSTRAP)
    return buf.getvalue()


class Streamer:
    """A keep-alive client of InvokeWithResponseStream that times the raw event-stream bytes."""

    def __init__(self, port: int, function: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.path = f"/2021-11-15/functions/{function}/response-streaming-invocations"

    def __call__(self, event: dict[str, Any], mark_at: int = 0) -> tuple[float, float, int, float | None]:
        """(seconds to the first body byte, to the end, bytes read, seconds to reach `mark_at` bytes)."""
        started = time.perf_counter()
        self.conn.request("POST", self.path, body=json.dumps(event).encode())
        response = self.conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream failed: {response.status} {response.read()[:200]!r}")
        first: float | None = None
        marked: float | None = None
        size = 0
        while True:
            data = response.read1(1 << 20)
            if not data:
                break
            now = time.perf_counter() - started
            first = first if first is not None else now
            size += len(data)
            if mark_at and marked is None and size >= mark_at:
                marked = now
        return first or 0.0, time.perf_counter() - started, size, marked


def stats_ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50) * 1000, 2), "p99": round(percentile(values, 99) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="invocations per latency figure")
    parser.add_argument("--large-mb", type=int, default=16, help="size of the large stream, in MiB")
    args = parser.parse_args()
    server = BenchServer()
    try:
        lam = server.client()
        lam.create_function(FunctionName="streamer", Runtime="provided.al2023", Role=ROLE, Handler="x",
                            Code={"ZipFile": bootstrap_zip()},
                            Timeout=120, MemorySize=1769)
        lam.create_function(FunctionName="noop", Runtime="python3.11", Role=ROLE, Handler="app.handler",
                            Code={"ZipFile": zip_of({"app.py": NOOP})}, MemorySize=1769)
        for name in ("streamer", "noop"):
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
        streamer, noop_stream, noop = Streamer(server.port, "streamer"), Streamer(server.port, "noop"), \
            Invoker(server.port, "noop")
        streamer({})
        noop_stream({})
        noop()

        firsts, ends = [], []
        for _ in range(max(10, args.runs // 10)):
            first, end, _, _ = streamer({"pieces": 2, "work_ms": 100})
            firsts.append(first)
            ends.append(end)

        def timed(call: Any) -> list[float]:
            out = []
            for _ in range(args.runs):
                started = time.perf_counter()
                call()
                out.append(time.perf_counter() - started)
            return out

        invoke_rt = timed(noop)
        stream_buffered_rt = timed(lambda: noop_stream({}))
        stream_rt = timed(lambda: streamer({}))

        total = args.large_mb * MIB
        _, end, size, six_mb_at = streamer({"pieces": total // 65536, "piece": 65536}, mark_at=6 * MIB)
        assert six_mb_at is not None and size >= total
        capped_rate = (size - 6 * MIB) / (end - six_mb_at) / MIB
        uncapped_rate = 6 / six_mb_at
    finally:
        server.close()

    results = {
        "first_byte_ms": stats_ms(firsts),
        "end_ms": stats_ms(ends),
        "invoke_round_trip_ms": stats_ms(invoke_rt),
        "stream_round_trip_python_ms": stats_ms(stream_buffered_rt),
        "stream_round_trip_streaming_runtime_ms": stats_ms(stream_rt),
        "large_stream": {"mib": args.large_mb, "first_6_mib_mib_per_s": round(uncapped_rate, 1),
                         "after_6_mib_mib_per_s": round(capped_rate, 2), "total_s": round(end, 2)},
    }
    print(f"isolation: {server.health['isolation']}")
    print(f"chunk, 100 ms of work, chunk:   first byte p50 {results['first_byte_ms']['p50']} ms, "
          f"end p50 {results['end_ms']['p50']} ms")
    for label, key in (("Invoke, python no-op", "invoke_round_trip_ms"),
                       ("InvokeWithResponseStream, python no-op", "stream_round_trip_python_ms"),
                       ("InvokeWithResponseStream, streaming bootstrap", "stream_round_trip_streaming_runtime_ms")):
        print(f"{label:<48} p50 {results[key]['p50']:>7} ms  p99 {results[key]['p99']:>7} ms")
    large = results["large_stream"]
    print(f"{args.large_mb} MiB stream: first 6 MiB at {large['first_6_mib_mib_per_s']} MiB/s, "
          f"the rest at {large['after_6_mib_mib_per_s']} MiB/s ({large['total_s']} s in all)")
    path = write_result("streaming", {"isolation": server.health["isolation"], "runs": args.runs, **results})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
