"""The context object a handler receives, attribute for attribute as on Lambda."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

# W3C trace-context members that `LambdaContext.w3c()` exposes from the client context.
W3C_ALLOWED_FIELDS = ("traceparent", "tracestate", "baggage")

_FUNCTION_VARIABLES = (
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
)


def _function_variables_reader() -> Callable[[], List[Optional[str]]]:
    """Reads the five variables every context copies, as they are at each invocation.

    On POSIX, os.environ keeps its items in a dict of encoded bytes that every change updates;
    a lookup there costs a fraction of `os.environ.get`, which matters on every invocation.
    """
    data = getattr(os.environ, "_data", None)
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    if os.name != "posix" or not isinstance(data, dict):
        return lambda: [os.environ.get(name) for name in _FUNCTION_VARIABLES]
    keys = [name.encode(encoding, errors) for name in _FUNCTION_VARIABLES]
    lookup = data.get

    def read() -> List[Optional[str]]:
        values = [lookup(key) for key in keys]
        return [None if v is None else v.decode(encoding, errors) for v in values]

    return read


_read_function_variables = _function_variables_reader()


class LambdaContext(object):
    def __init__(
        self,
        invoke_id: str,
        client_context: Optional[Dict[str, Any]],
        cognito_identity: Optional[Dict[str, Any]],
        epoch_deadline_time_in_ms: int,
        invoked_function_arn: Optional[str] = None,
        tenant_id: Optional[str] = None,
    ) -> None:
        self.aws_request_id = invoke_id
        # memory_limit_in_mb is a string, as the managed runtime has it.
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = _read_function_variables()
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self._w3c_fields = _pop_w3c(client_context) if client_context else {}

        self.client_context: Optional[ClientContext] = None
        if client_context is not None:
            cc = ClientContext()
            _fill(cc, client_context)
            client = cc.client
            if client is not None:
                obj = Client()
                _fill(obj, client)
                cc.client = obj
            self.client_context = cc

        identity = self.identity = CognitoIdentity()
        if cognito_identity is None:
            identity.cognito_identity_id = identity.cognito_identity_pool_id = None
        else:
            identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def w3c(self) -> Dict[str, str]:
        """The W3C trace context (traceparent, tracestate, baggage) the caller sent, if any."""
        return dict(self._w3c_fields)

    def log(self, msg: Any) -> None:
        for handler in logging.getLogger().handlers:
            sink = getattr(handler, "log_sink", None)
            if sink is not None:
                sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            "%s([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (
                self.__class__.__name__,
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]
    cognito_identity_id: Optional[str]
    cognito_identity_pool_id: Optional[str]

    def __repr__(self) -> str:
        return "%s([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.__class__.__name__,
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = ["app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id"]
    installation_id: Any
    app_title: Any
    app_version_name: Any
    app_version_code: Any
    app_package_name: Any

    def __repr__(self) -> str:
        return "%s([installation_id=%s,app_title=%s,app_version_name=%s,app_version_code=%s,app_package_name=%s])" % (
            self.__class__.__name__,
            self.installation_id,
            self.app_title,
            self.app_version_name,
            self.app_version_code,
            self.app_package_name,
        )


class ClientContext(object):
    __slots__ = ["client", "custom", "env"]
    client: Any
    custom: Any
    env: Any

    def __repr__(self) -> str:
        return "%s([custom=%s,env=%s,client=%s])" % (self.__class__.__name__, self.custom, self.env, self.client)


def _fill(obj: Any, values: Any) -> None:
    """Set every slot of obj from the mapping (missing members become None)."""
    for name in obj.__class__.__slots__:
        setattr(obj, name, values.get(name, None))


def _pop_w3c(client_context: Any) -> Dict[str, str]:
    """Remove `w3c` from the client context; keep its allowed string members."""
    if not isinstance(client_context, dict) or "w3c" not in client_context:
        return {}
    raw = client_context.pop("w3c")
    if not isinstance(raw, dict):
        return {}
    return {key: raw[key] for key in W3C_ALLOWED_FIELDS if isinstance(raw.get(key), str)}
