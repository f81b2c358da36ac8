"""A PM QoS CPU wake-up latency request, held while invocations flow.

An invocation crosses four processes (server, init, runtime, and back), and each hop wakes
a process that was sleeping. Where idle CPUs sleep deeply (on virtual machines, a halted
vCPU has to be scheduled again by the host), each of those wake-ups costs tens to hundreds
of microseconds: on the 2-core VM this project is measured on, a warm round trip takes
0.27 ms p50 with idle CPUs polling and 0.6-0.8 ms without. The kernel's PM QoS interface
(`/dev/cpu_dma_latency`, what `tuned`'s latency-performance profile uses) asks the CPUs to
stay in idle states that wake within `target_us`; the request lasts while the file is open.

lambdastack holds it only while invocations arrive (until `hold_s` after the last one), so
an idle server costs the host nothing. Without the privilege to open the device the request
is simply not made.
"""

from __future__ import annotations

import logging
import os
import struct
import time

log = logging.getLogger("lambdastack.worker")

DEVICE = "/dev/cpu_dma_latency"
HOLD_S = 2.0


class CpuLatency:
    def __init__(self, target_us: int | None, hold_s: float = HOLD_S, device: str = DEVICE) -> None:
        self.target_us = target_us  # None: make no request
        self.hold_s = hold_s
        self.device = device
        self.available = target_us is not None
        self._fd: int | None = None
        self._last = 0.0

    @property
    def held(self) -> bool:
        return self._fd is not None

    def touch(self) -> None:
        """An invocation is starting: make sure the request is held."""
        self._last = time.monotonic()
        if self._fd is None and self.available:
            self._open()

    def release_if_idle(self) -> None:
        if self._fd is not None and time.monotonic() - self._last > self.hold_s:
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def status(self) -> dict[str, object]:
        return {"target_us": self.target_us, "available": self.available, "held": self.held}

    def _open(self) -> None:
        assert self.target_us is not None
        try:
            fd = os.open(self.device, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as e:
            self.available = False
            log.info("no CPU wake-up latency request (%s: %s)", self.device, e.strerror)
            return
        try:
            os.write(fd, struct.pack("i", self.target_us))
        except OSError as e:
            os.close(fd)
            self.available = False
            log.info("no CPU wake-up latency request (%s: %s)", self.device, e.strerror)
            return
        self._fd = fd
