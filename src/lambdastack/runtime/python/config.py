"""The runtime's configuration, read from the environment the platform sets."""

from __future__ import annotations

import os
from typing import Mapping, Optional

from . import logs

# Runtimes whose managed runtime writes JSON with non-ASCII characters as they are.
UNESCAPED_JSON_RUNTIMES = frozenset(
    ("AWS_Lambda_python3.12", "AWS_Lambda_python3.13", "AWS_Lambda_python3.14", "AWS_Lambda_python3.15")
)
INIT_TYPE_SNAP_START = "snap-start"


class RuntimeConfig(object):
    __slots__ = ("api_address", "ensure_ascii", "handler", "initialization_type", "log_format", "log_level",
                 "runtime_dir", "task_root")  # fmt: skip

    def __init__(self, environ: Mapping[str, str], handler: Optional[str] = None) -> None:
        handler = handler if handler is not None else environ.get("_HANDLER")
        if not handler:
            raise ValueError("Handler not set")
        self.handler = handler
        self.api_address = environ["AWS_LAMBDA_RUNTIME_API"]
        self.task_root = environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
        self.runtime_dir = environ.get("LAMBDA_RUNTIME_DIR") or None
        self.log_format = logs.log_format_from_env(environ.get("AWS_LAMBDA_LOG_FORMAT"))
        self.log_level = logs.log_level_from_env(environ.get("AWS_LAMBDA_LOG_LEVEL"))
        self.ensure_ascii = environ.get("AWS_EXECUTION_ENV") not in UNESCAPED_JSON_RUNTIMES
        self.initialization_type = environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") or "on-demand"

    @classmethod
    def from_environ(cls, handler: Optional[str] = None) -> "RuntimeConfig":
        return cls(os.environ, handler)
