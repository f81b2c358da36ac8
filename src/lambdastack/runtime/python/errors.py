"""Runtime faults and the error documents the Runtime API receives for them."""

from __future__ import annotations

import os
import traceback
from types import TracebackType
from typing import Any, Dict, List, Optional, Tuple, Type

MARSHAL_ERROR = "Runtime.MarshalError"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

# The X-Ray cause of a fault the runtime itself detected (bad input, bad output, bad context).
VALIDATION_XRAY_TYPE = "LambdaValidationError"

Frame = Tuple[str, Optional[int], str, Optional[str]]
ExcInfo = Tuple[Type[BaseException], BaseException, Optional[TracebackType]]

# Frames in these files belong to the runtime, not to the function.
_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


class FaultException(Exception):
    """A failure the runtime reports with one of Lambda's `Runtime.*` error types."""

    def __init__(self, exception_type: str, msg: str, trace: Optional[List[str]] = None) -> None:
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


def make_error(
    message: Optional[str],
    error_type: Optional[str],
    stack_trace: Optional[List[str]],
    request_id: Optional[str] = None,
) -> Dict[str, Any]:
    """The error document: always these four members, in this order."""
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace or [],
    }


def user_frames(tb: Optional[TracebackType]) -> List[Frame]:
    """The traceback's frames without the runtime's own leading frames.

    If every frame is the runtime's (the handler was not even called), all are kept.
    """
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if os.path.dirname(frame[0]) != _RUNTIME_DIR:
            return frames[i:]
    return frames


def format_frames(frames: List[Frame]) -> List[str]:
    return traceback.format_list(frames)  # type: ignore[arg-type]


def make_xray_fault(error_type: str, message: str, working_dir: str, frames: List[Frame]) -> Dict[str, Any]:
    stack = [{"label": name, "path": path, "line": line} for path, line, name, _ in frames]
    return {
        "working_directory": working_dir,
        "exceptions": [{"message": message, "type": error_type, "stack": stack}],
        "paths": list({path for path, _, _, _ in frames}),
    }


def error_from_exception(exc_info: ExcInfo, request_id: Optional[str] = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The error document and X-Ray cause of an exception raised by the function's code."""
    etype, value, tb = exc_info
    frames = user_frames(tb)
    message = str(value)
    error = make_error(message, etype.__name__, format_frames(frames), request_id)
    return error, make_xray_fault(etype.__name__, message, os.getcwd(), frames)


def error_from_fault(fault: FaultException, request_id: Optional[str] = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    error = make_error(fault.msg, fault.exception_type, fault.trace, request_id)
    return error, make_xray_fault(VALIDATION_XRAY_TYPE, fault.msg, os.getcwd(), [])
