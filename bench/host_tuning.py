"""The same host tuning for every system a benchmark compares.

lambdastack can hold a PM QoS request (`serve --cpu-latency-us US`, off by default) so that
idle CPUs wake fast; a peer cannot. For comparisons on equal terms the benchmark itself holds
the request for the whole run, for every system (`--cpu-latency-us US`), or nobody holds it
(the default). The figures say which.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator

DEVICE = "/dev/cpu_dma_latency"


@contextlib.contextmanager
def cpu_latency_held(target_us: int | None) -> Iterator[str]:
    """Hold the request while the block runs; yields what the results should record."""
    if target_us is None:
        yield "none (idle CPUs halt as the host decides)"
        return
    fd = os.open(DEVICE, os.O_WRONLY)  # needs root: a benchmark asked for it explicitly
    try:
        os.write(fd, struct.pack("i", target_us))
        yield f"PM QoS cpu_dma_latency {target_us} us held for the whole run, for every system"
    finally:
        os.close(fd)


def parse(value: str) -> int | None:
    return None if value == "off" else int(value)
