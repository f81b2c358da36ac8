"""What a worker needs to know to create environments of one function version."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdastack.worker.streaming import ResponseSink


@dataclass(frozen=True)
class SharedFileSystem:
    """A host directory mounted read-write at `target` (under /mnt/), its files owned on the
    host by `uid:gid` (the access point's POSIX user) whoever writes them in the environment."""

    host: Path
    target: str
    uid: int
    gid: int


@dataclass(frozen=True)
class EnvironmentSpec:
    """Everything that makes two environments interchangeable; `key` identifies it."""

    key: str  # e.g. the function's ARN, version and revision
    function_name: str
    version: str  # "$LATEST" or "3"
    runtime: str  # "python3.11", "provided.al2023", ...
    handler: str | None
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    region: str
    account: str
    code_dir: Path | None
    # The function's layers, in order: mounted merged and read-only at /opt, a later layer's
    # files over an earlier one's.
    opt_dirs: tuple[Path, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    log_format: str = "Text"
    log_level: str | None = None
    log_group: str = ""
    # For runtimes that start a program (custom runtimes, container images) instead of
    # lambdastack's built-in Python runtime.
    argv: tuple[str, ...] | None = None
    root: Path | None = None  # a container image's root filesystem
    cwd: str | None = None
    architecture: str = "x86_64"
    # Start the built-in Python runtime by exec inside the environment instead of forking it
    # from the zygote (see worker/loader.py).
    fresh_runtime_process: bool = False
    # A published version with SnapStart: new environments are copies of an initialized one
    # (see worker/snapstart.py).
    snapstart: bool = False
    function_arn: str = ""
    role: str = ""  # the execution role: whose credentials the function gets
    # FileSystemConfigs: shared directories mounted read-write under /mnt/.
    file_systems: tuple[SharedFileSystem, ...] = ()

    def opt_path(self, relative: str) -> Path | None:
        """The host file a function sees at /opt/<relative>: in the last layer that has it."""
        for layer in reversed(self.opt_dirs):
            if os.path.lexists(layer / relative):
                return layer / relative
        return None

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.function_name}"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    deadline_ms: int = 0
    client_context: str | None = None  # JSON text, already base64-decoded
    cognito_identity: str | None = None
    trace_id: str | None = None
    tenant_id: str | None = None
    content_type: str = "application/json"
    want_log_tail: bool = False
    # Where a response the function streams goes as it arrives (InvokeWithResponseStream);
    # None: it is gathered and returned whole, as Invoke returns it.
    sink: ResponseSink | None = None


@dataclass
class InvokeOutcome:
    payload: bytes
    function_error: str | None  # "Unhandled" when the function (or its runtime) failed
    error_type: str | None
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    log: bytes  # START ... REPORT of this invocation
    environment_id: str
    content_type: str = "application/json"
    provisioned: bool = False  # it ran on a provisioned environment (billed at the provisioned rate)
