"""Lambda's platform log lines (text format)."""

from __future__ import annotations

import math
import signal

_SIGNAL_NAMES = {
    signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated", signal.SIGBUS: "bus error", signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction", signal.SIGINT: "interrupt", signal.SIGPIPE: "broken pipe",
}


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def billed_ms(duration_ms: float, init_ms: float | None = None, restore_ms: float | None = None) -> int:
    """Invoke time rounded up to 1 ms; a cold start's init (or a SnapStart copy's restore) is
    billed too (as on Lambda since 2025)."""
    billed = max(1, math.ceil(duration_ms))
    if init_ms is not None:
        billed += math.ceil(init_ms)
    if restore_ms is not None:
        billed += math.ceil(restore_ms)
    return billed


def report_line(
    request_id: str,
    duration_ms: float,
    billed: int,
    memory_mb: int,
    max_used_mb: int,
    init_ms: float | None,
    status: str | None = None,
    error_type: str | None = None,
    restore_ms: float | None = None,
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {max_used_mb} MB\t"
    )
    if init_ms is not None:
        line += f"Init Duration: {init_ms:.2f} ms\t"
    if restore_ms is not None:
        line += f"Restore Duration: {restore_ms:.2f} ms\tBilled Restore Duration: {math.ceil(restore_ms)} ms\t"
    if status:
        line += f"Status: {status}\t"
        if error_type:
            line += f"Error Type: {error_type}\t"
    return line + "\n"


def init_report_line(init_ms: float, phase: str, status: str, error_type: str | None = None) -> str:
    line = f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: {phase}\tStatus: {status}\t"
    if error_type:
        line += f"Error Type: {error_type}\t"
    return line + "\n"


def restore_report_line(restore_ms: float, status: str | None = None, error_type: str | None = None) -> str:
    """A SnapStart copy's restore, before its first START (with a status only when it failed)."""
    line = f"RESTORE_REPORT Restore Duration: {restore_ms:.2f} ms\t"
    if status:
        line += f"Status: {status}\t"
        if error_type:
            line += f"Error Type: {error_type}\t"
    return line + "\n"


def exit_description(meta: dict[str, object]) -> str:
    """How Lambda describes a runtime's exit: `exit status 1` or `signal: killed`."""
    if "signal" in meta:
        number = int(meta["signal"])  # type: ignore[call-overload]
        try:
            name = _SIGNAL_NAMES.get(signal.Signals(number), signal.Signals(number).name)
        except ValueError:
            name = str(number)
        return f"signal: {name}"
    return f"exit status {meta.get('status', 0)}"
