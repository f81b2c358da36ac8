"""The invocation loop: next event, call the handler, post its result or its error."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Dict, NoReturn, Optional, Union

from . import logs
from .channel_client import ChannelClient
from .client import Invocation, RuntimeClient
from .context import LambdaContext
from .errors import LAMBDA_CONTEXT_UNMARSHAL_ERROR, FaultException, error_from_exception, error_from_fault
from .handler import Handler
from .marshalling import JsonEncoder, decode_event, encode_result

ErrorLogger = Callable[[Dict[str, Any], Any], None]
Client = Union[RuntimeClient, ChannelClient]  # HTTP to the init, or frames straight to the worker


def _parse_json_header(value: str, name: str) -> Any:
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (name, e))


def make_context(inv: Invocation) -> LambdaContext:
    client_context = _parse_json_header(inv.client_context, "Client Context") if inv.client_context else None
    cognito = _parse_json_header(inv.cognito_identity, "Cognito Identity") if inv.cognito_identity else None
    return LambdaContext(
        inv.request_id, client_context, cognito, inv.deadline_ms, inv.invoked_function_arn, inv.tenant_id
    )


class Invoker(object):
    """Runs the handler for each event and reports the outcome to the Runtime API."""

    def __init__(
        self, client: Client, handler: Handler, encoder: JsonEncoder, log_error: ErrorLogger, log_sink: Any
    ) -> None:
        self.client = client
        self.handler = handler
        self.encoder = encoder
        self.log_error = log_error
        self.log_sink = log_sink

    def run_forever(self) -> NoReturn:
        handle = self.handle
        inv = self.client.next()
        while True:
            inv = handle(inv)

    def handle(self, inv: Invocation) -> Invocation:
        """Run one event; returns the next one."""
        request_id = inv.request_id
        scope = logs.CURRENT
        scope.request_id = request_id
        scope.tenant_id = inv.tenant_id
        _set_trace_id(inv.trace_id)

        error: Optional[Dict[str, Any]] = None
        try:
            context = make_context(inv)
            event = decode_event(inv.body, inv.content_type)
            result = self.handler(event, context)
            body, content_type = encode_result(self.encoder, result)
        except FaultException as fault:
            error, xray = error_from_fault(fault, request_id)
        except Exception:
            error, xray = error_from_exception(sys.exc_info(), request_id)  # type: ignore[arg-type]

        if error is None:
            return self.client.respond_and_next(request_id, body, content_type)
        self.log_error(error, self.log_sink)
        to_json = self.encoder.encode
        self.client.post_error(request_id, to_json(error).encode("utf-8", "replace"), error["errorType"], to_json(xray))
        return self.client.next()


def _set_trace_id(trace_id: Optional[str]) -> None:
    environ = os.environ
    if trace_id is not None:
        environ["_X_AMZN_TRACE_ID"] = trace_id
    elif "_X_AMZN_TRACE_ID" in environ:
        del environ["_X_AMZN_TRACE_ID"]
