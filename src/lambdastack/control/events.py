"""Change notifications: who must hear that a function changed or went away.

Control announces every committed change of a function, its versions, aliases or
concurrency settings; subscribers (the engine's caches and pools) react to it. Listeners
run on the thread that made the change, after the commit: they must be quick and must
not call back into control (hop to an event loop with `call_soon_threadsafe` if needed).
A failing listener is logged and never undoes or fails the change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("lambdastack.control.events")

Listener = Callable[[str, str, str], None]


class Events:
    def __init__(self) -> None:
        self._changed: list[Listener] = []
        self._deleted: list[Listener] = []
        self._lock = threading.Lock()

    def on_function_changed(self, listener: Listener) -> None:
        """Call `listener(account, region, name)` after each committed change of a function."""
        with self._lock:
            self._changed.append(listener)

    def on_function_deleted(self, listener: Listener) -> None:
        """Call `listener(account, region, name)` after a function was deleted."""
        with self._lock:
            self._deleted.append(listener)

    def function_changed(self, account: str, region: str, name: str) -> None:
        self._emit(self._changed, account, region, name)

    def function_deleted(self, account: str, region: str, name: str) -> None:
        self._emit(self._deleted, account, region, name)

    def _emit(self, listeners: list[Listener], account: str, region: str, name: str) -> None:
        with self._lock:
            targets = list(listeners)
        for listener in targets:
            try:
                listener(account, region, name)
            except Exception:
                log.exception("change listener %r failed for %s/%s/%s", listener, account, region, name)
