"""Finding the function's handler from the handler string (`module.function`, `pkg/module.function`)."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

from .errors import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    USER_CODE_SYNTAX_ERROR,
    FaultException,
)

Handler = Callable[[Any, Any], Any]


def load_handler(handler: str) -> Handler:
    """Import the handler's module (its init code runs now) and return the handler.

    Import and lookup failures raise FaultException with Lambda's error types; any other
    exception raised by the module's code propagates as it is.
    """
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, e))

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            message = "Cannot use built-in module %s as a handler module" % modname
            raise FaultException(BUILT_IN_MODULE_CONFLICT, message)
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(IMPORT_MODULE_ERROR, "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(USER_CODE_SYNTAX_ERROR, "Syntax error in module '%s': %s" % (modname, e), trace)

    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(HANDLER_NOT_FOUND, "Handler '%s' missing on module '%s'" % (fname, modname))
