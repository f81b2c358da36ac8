"""SnapStart in the Python runtime: the `snapshot_restore_py` hooks and what a copy renews.

Functions register hooks with the `snapshot-restore-py` package that Lambda's Python
runtimes ship (lambdastack mounts it in /var/runtime): before-snapshot hooks run in the
template once its init is done, in reverse order of registration; after-restore hooks
run in each copy before its first event, in order of registration.
"""

from __future__ import annotations

import importlib
import random
import sys
from typing import Any, Callable, List, Tuple

BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
BEFORE_SNAPSHOT_EXIT = 64
AFTER_RESTORE_EXIT = 65

Hook = Tuple[Callable[..., Any], Tuple[Any, ...], dict]


def _registry(getter: str) -> List[Hook]:
    try:
        module = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return []  # nobody registered anything: the function never imported it
    hooks: List[Hook] = getattr(module, getter)()
    return hooks


def run_before_snapshot() -> None:
    hooks = _registry("get_before_snapshot")
    while hooks:
        func, args, kwargs = hooks.pop()  # the last registered runs first
        func(*args, **kwargs)


def run_after_restore() -> None:
    for func, args, kwargs in _registry("get_after_restore"):
        func(*args, **kwargs)


def reseed() -> None:
    """Give the copy random state of its own: every copy starts from the same memory.

    (`os.urandom`, `secrets` and `uuid.uuid4` read the kernel and need nothing.)
    """
    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        try:
            numpy_random.seed()  # the legacy global RandomState that np.random.* functions use
        except Exception:
            pass
