"""Entry points of the built-in Python runtime.

`preload()` runs in a zygote before it forks environments; `main()` runs in an environment
(or as `python -m lambdastack.runtime.python.bootstrap [handler]`): it sets up the process
as Lambda's Python runtime does, runs the function's init code, then serves events forever.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, List, NoReturn, Optional

from . import logs
from .client import RuntimeApiError, RuntimeClient
from .config import INIT_TYPE_SNAP_START, RuntimeConfig
from .errors import FaultException, error_from_exception, make_error
from .handler import Handler, load_handler
from .invoke import ErrorLogger, Invoker
from .marshalling import JsonEncoder

# Standard modules that the code above imports lazily on its first use; loading them in the
# zygote keeps every environment from importing them again after it is forked.
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
    config: RuntimeConfig, client: RuntimeClient, encoder: JsonEncoder, log_error: ErrorLogger, sink: Any
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


def _after_init(config: RuntimeConfig, client: RuntimeClient) -> None:
    """The step between init and the first event.

    With SnapStart (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`) this is where the
    before-snapshot hooks run, `/runtime/restore/next` waits for the restore and the
    after-restore hooks run; lambdastack does not offer SnapStart for this runtime yet.
    """
    if config.initialization_type == INIT_TYPE_SNAP_START:
        return


def main(handler: Optional[str] = None) -> NoReturn:
    """Run the runtime in this process: init, then events until the environment ends."""
    config = RuntimeConfig.from_environ(handler)
    _set_sys_path(config)
    if sys.stdout is not None:
        sys.stdout = logs.Unbuffered(sys.stdout)
    if sys.stderr is not None:
        sys.stderr = logs.Unbuffered(sys.stderr)
    client = RuntimeClient(config.api_address)
    encoder = JsonEncoder(config.ensure_ascii)
    sink = logs.create_log_sink()
    sink.__enter__()
    log_error = logs.make_error_logger(config.log_format, encoder.encode)
    try:
        request_handler = _init(config, client, encoder, log_error, sink)
        _after_init(config, client)
        Invoker(client, request_handler, encoder, log_error, sink).run_forever()
    except RuntimeApiError as e:
        if sys.stderr is not None:
            sys.stderr.write("[ERROR] LAMBDA_RUNTIME %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
