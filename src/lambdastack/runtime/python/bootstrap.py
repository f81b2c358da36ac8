"""Entry points of the built-in Python runtime.

`preload()` runs in a zygote before it forks environments; `main()` runs in an environment
(or as `python -m lambdastack.runtime.python.bootstrap [handler]`): it sets up the process
as Lambda's Python runtime does, runs the function's init code, then serves events forever.
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional

from . import logs, snapstart
from .channel_client import ChannelClient
from .client import RuntimeApiError, RuntimeClient
from .config import RuntimeConfig
from .errors import FaultException, error_from_exception, make_error
from .handler import Handler, load_handler
from .invoke import Client, ErrorLogger, Invoker
from .marshalling import JsonEncoder

# Standard modules that the code above imports lazily on its first use; loading them in the
# zygote keeps every environment from importing them again after it is forked.
# Called once init is done, in a SnapStart template; returns in each copy of the process,
# with the copy's own socket to the worker (-1: it speaks to its init's Runtime API).
Snapshot = Callable[[Dict[str, Any]], int]

_LAZY_STDLIB = ("encodings.idna", "linecache", "tokenize", "unicodedata", "io", "string")


def preload() -> None:
    """Import everything the runtime needs. Starts no thread and opens no socket."""
    for name in _LAZY_STDLIB:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def lambda_sys_path(task_root: str, runtime_dir: Optional[str], current: List[str]) -> List[str]:
    """The function's code first, then its layers, then the runtime and the standard library."""
    version = "python%d.%d" % sys.version_info[:2]
    front = [task_root, "/opt/python/lib/%s/site-packages" % version, "/opt/python"]
    if runtime_dir:
        front.append(runtime_dir)
    path: List[str] = []
    for entry in front + current:
        if entry and entry not in path:
            path.append(entry)
    return path


def _set_sys_path(config: RuntimeConfig) -> None:
    sys.path[:] = lambda_sys_path(config.task_root, config.runtime_dir, sys.path)
    # A zygote may have looked at these directories before the function's files were there.
    # (Not importlib.invalidate_caches(): on some versions it imports importlib.metadata.)
    for entry in sys.path[:4]:
        sys.path_importer_cache.pop(entry, None)


def _init(
    config: RuntimeConfig, client: Client, encoder: JsonEncoder, log_error: ErrorLogger, sink: Any
) -> Handler:
    """Run the function's init code; on failure log and report the error, then exit(1)."""
    try:
        logs.setup_logging(config.log_format, config.log_level, sink)
        return load_handler(config.handler)
    except FaultException as fault:
        error = make_error(fault.msg, fault.exception_type, fault.trace)
    except Exception:
        error, _ = error_from_exception(sys.exc_info())  # type: ignore[arg-type]
    logging.warning(logs.UNHANDLED_EXCEPTION_WARNING)
    log_error(error, sink)
    client.post_init_error(encoder.encode(error).encode("utf-8", "replace"), error["errorType"])
    sys.exit(1)


def _report_hook_failure(
    client: Client, encoder: JsonEncoder, log_error: ErrorLogger, sink: Any, error_type: str, status: int
) -> NoReturn:
    error, _ = error_from_exception(sys.exc_info())  # type: ignore[arg-type]
    log_error(error, sink)
    client.post_init_error(encoder.encode(error).encode("utf-8", "replace"), error_type)
    sys.exit(status)


def _snapshot_and_restore(
    client: Client, encoder: JsonEncoder, log_error: ErrorLogger, sink: Any, snapshot: Snapshot
) -> Client:
    """SnapStart: the step between init and the first event.

    Before-snapshot hooks run here, in the template; `snapshot` returns in each copy of it
    (see sandbox/snapshot.py), which reseeds its random state and runs the after-restore
    hooks. A failing hook is reported as Lambda's runtime does, with its exit status.
    """
    try:
        snapstart.run_before_snapshot()
    except Exception:
        _report_hook_failure(client, encoder, log_error, sink, snapstart.BEFORE_SNAPSHOT_ERROR,
                             snapstart.BEFORE_SNAPSHOT_EXIT)
    client.close()  # each copy has a way in of its own: its own socket, or its own init
    sys.stdout.flush()
    sys.stderr.flush()
    channel_fd = snapshot({})
    if channel_fd >= 0:
        client = ChannelClient(socket.socket(fileno=channel_fd), client.address)
    snapstart.reseed()
    try:
        snapstart.run_after_restore()
    except Exception:
        _report_hook_failure(client, encoder, log_error, sink, snapstart.AFTER_RESTORE_ERROR,
                             snapstart.AFTER_RESTORE_EXIT)
    return client


def main(handler: Optional[str] = None, snapshot: Optional[Snapshot] = None, channel_fd: int = -1) -> NoReturn:
    """Run the runtime in this process: init, then events until the environment ends.

    With `snapshot` (a SnapStart template) the process is copied once its init is done.
    With `channel_fd` events come as frames straight from the worker (see channel_client).
    """
    config = RuntimeConfig.from_environ(handler)
    _set_sys_path(config)
    if sys.stdout is not None:
        sys.stdout = logs.Unbuffered(sys.stdout)
    if sys.stderr is not None:
        sys.stderr = logs.Unbuffered(sys.stderr)
    client: Client
    if channel_fd >= 0:
        client = ChannelClient(socket.socket(fileno=channel_fd), config.api_address)
    else:
        client = RuntimeClient(config.api_address)
    encoder = JsonEncoder(config.ensure_ascii)
    sink = logs.create_log_sink()
    sink.__enter__()
    log_error = logs.make_error_logger(config.log_format, encoder.encode)
    try:
        request_handler = _init(config, client, encoder, log_error, sink)
        if snapshot is not None:
            client = _snapshot_and_restore(client, encoder, log_error, sink, snapshot)
        Invoker(client, request_handler, encoder, log_error, sink).run_forever()
    except RuntimeApiError as e:
        if sys.stderr is not None:
            sys.stderr.write("[ERROR] LAMBDA_RUNTIME %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
