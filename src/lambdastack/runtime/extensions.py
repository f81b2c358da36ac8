"""The Lambda Extensions API (2020-01-01), served by the init next to the Runtime API.

External extensions are the executables in /opt/extensions; PID 1 starts them before the
runtime. Each registers (`POST /extension/register`, naming the events it wants: INVOKE,
SHUTDOWN), then long-polls `GET /extension/event/next`. Lifecycle, as on Lambda:

- init completes when the runtime and every extension wait for their next event;
- each invocation is also an INVOKE event for the extensions that subscribed to it;
- the environment may be frozen only once every extension asked for its next event again;
- before an environment goes, SHUTDOWN (with a deadline) goes to the extensions.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional

from lambdastack.runtime.httpserver import Connection, Request

PREFIX = "/2020-01-01/extension/"
EVENTS = ("INVOKE", "SHUTDOWN")


class Extension:
    __slots__ = ("events", "id", "name", "parked", "queue")

    def __init__(self, name: str, events: List[str]) -> None:
        self.id = str(uuid.uuid4())
        self.name = name
        self.events = set(events)
        self.parked: Optional[Connection] = None  # its pending `event/next`
        self.queue: List[Dict[str, Any]] = []  # events not yet delivered

    @property
    def waiting(self) -> bool:
        return self.parked is not None and not self.queue


class Extensions:
    def __init__(self, function_info: Dict[str, str], launched: int) -> None:
        self.function_info = function_info
        self.launched = launched  # extension processes started by PID 1
        self.exited = 0
        self.by_id: Dict[str, Extension] = {}
        self.registration_open = True
        self.errors: List[Dict[str, str]] = []  # init or exit errors reported by extensions

    def __len__(self) -> int:
        return len(self.by_id)

    @property
    def settled(self) -> bool:
        """Every extension that can still register did, and waits for its next event."""
        registered_or_gone = len(self.by_id) + self.exited
        return registered_or_gone >= self.launched and all(e.waiting for e in self.by_id.values())

    # ------------------------------------------------------------------ HTTP

    def route(self, conn: Connection, req: Request) -> None:
        tail = req.path.split("?", 1)[0][len(PREFIX):]
        if tail == "register" and req.method == "POST":
            self._register(conn, req)
        elif tail == "event/next" and req.method == "GET":
            self._next(conn, req)
        elif tail in ("init/error", "exit/error") and req.method == "POST":
            self._error(conn, req, tail.split("/")[0])
        else:
            _reply(conn, 404, "Not Found", {"errorMessage": "no such route", "errorType": "NotFound"})

    def _register(self, conn: Connection, req: Request) -> None:
        name = req.headers.get("lambda-extension-name", "")
        try:
            events = json.loads(req.body or b"{}").get("events", [])
        except ValueError:
            events = None
        if not name or not isinstance(events, list) or any(e not in EVENTS for e in events):
            _reply(conn, 400, "Bad Request", {"errorMessage": "invalid registration", "errorType": "InvalidRequest"})
            return
        if not self.registration_open:
            _reply(conn, 403, "Forbidden", {"errorMessage": "registration is only possible during init",
                                            "errorType": "Extension.InvalidStateTransition"})
            return
        extension = Extension(name, events)
        self.by_id[extension.id] = extension
        conn.respond(200, "OK", json.dumps(self.function_info).encode(),
                     [("Lambda-Extension-Identifier", extension.id)])

    def _extension(self, conn: Connection, req: Request) -> Optional[Extension]:
        extension = self.by_id.get(req.headers.get("lambda-extension-identifier", ""))
        if extension is None:
            _reply(conn, 403, "Forbidden", {"errorMessage": "unknown extension identifier",
                                            "errorType": "Extension.UnknownExtensionIdentifier"})
        return extension

    def _next(self, conn: Connection, req: Request) -> None:
        extension = self._extension(conn, req)
        if extension is None:
            return
        extension.parked = conn
        conn.waiting = True
        self._deliver(extension)

    def _error(self, conn: Connection, req: Request, phase: str) -> None:
        extension = self._extension(conn, req)
        if extension is None:
            return
        self.errors.append({
            "phase": phase, "extension": extension.name,
            "errorType": req.headers.get("lambda-extension-function-error-type", "Extension.UnknownError"),
        })
        _reply(conn, 202, "Accepted", {"status": "OK"})

    # ------------------------------------------------------------------ events

    def _deliver(self, extension: Extension) -> None:
        conn = extension.parked
        if conn is None or not extension.queue:
            return
        event = extension.queue.pop(0)
        extension.parked = None
        conn.respond(200, "OK", json.dumps(event).encode(), [("Lambda-Extension-Event-Identifier",
                                                              str(uuid.uuid4()))])

    def publish(self, event: Dict[str, Any]) -> List[Connection]:
        """Queue an event for the extensions that subscribed to it; returns connections to flush."""
        flushed: List[Connection] = []
        for extension in self.by_id.values():
            if event["eventType"] in extension.events:
                extension.queue.append(event)
                conn = extension.parked
                self._deliver(extension)
                if conn is not None and extension.parked is None:
                    flushed.append(conn)
        return flushed

    def forget(self, conn: Connection) -> None:
        """A connection closed: an extension parked on it is no longer waiting."""
        for extension in self.by_id.values():
            if extension.parked is conn:
                extension.parked = None


def invoke_event(meta: Dict[str, Any]) -> Dict[str, Any]:
    event: Dict[str, Any] = {
        "eventType": "INVOKE",
        "deadlineMs": meta["deadline_ms"],
        "requestId": meta["request_id"],
        "invokedFunctionArn": meta["invoked_arn"],
    }
    if meta.get("trace_id"):
        event["tracing"] = {"type": "X-Amzn-Trace-Id", "value": meta["trace_id"]}
    return event


def shutdown_event(reason: str, deadline_ms: int) -> Dict[str, Any]:
    return {"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms}


def _reply(conn: Connection, status: int, reason: str, document: Dict[str, Any]) -> None:
    conn.respond(status, reason, json.dumps(document).encode())
