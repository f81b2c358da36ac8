"""Log output as the managed Python runtime writes it: sinks, the root logger's handler and formats.

Text records look like `[INFO]\\t2024-03-05T10:11:12.345Z\\t<request id>\\tmessage`; JSON records are
one object per line. Without `_LAMBDA_TELEMETRY_LOG_FD` everything goes to stdout.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

TEXT = "Text"
JSON = "JSON"

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
JSON_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

ERROR_LINE_SEPARATOR = "\r"  # keeps a multi-line error one log event
ERROR_INDENT = "\u00a0"  # NO-BREAK SPACE replaces leading spaces of traceback lines

UNHANDLED_EXCEPTION_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this error "
    "by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


def _frame_types(base: int) -> Dict[int, bytes]:
    offsets = {logging.NOTSET: 0, logging.DEBUG: 8, logging.INFO: 12, logging.WARNING: 16, logging.ERROR: 20,
               logging.CRITICAL: 24}  # fmt: skip
    return {level: (base + off).to_bytes(4, "big") for level, off in offsets.items()}


# Telemetry frame types: 0xA55A0002/0xA55A0003 (JSON/text), plus one per level.
JSON_FRAME_TYPES = _frame_types(0xA55A0002)
TEXT_FRAME_TYPES = _frame_types(0xA55A0003)
DEFAULT_FRAME_TYPE = TEXT_FRAME_TYPES[logging.NOTSET]

_RESERVED_FIELDS = frozenset(
    (
        "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
        "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
        "threadName", "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
    )
)  # fmt: skip


class RequestScope(object):
    """The invocation the log records belong to (the last one, once it has ended)."""

    __slots__ = ("request_id", "tenant_id")

    def __init__(self) -> None:
        self.request_id: Optional[str] = None
        self.tenant_id: Optional[str] = None


CURRENT = RequestScope()


def log_format_from_env(value: Optional[str]) -> str:
    return JSON if value and value.upper() == "JSON" else TEXT


def log_level_from_env(value: Optional[str]) -> str:
    """`AWS_LAMBDA_LOG_LEVEL` as a level name ('' when unset); TRACE means DEBUG."""
    if value is None:
        return ""
    return ("DEBUG" if value == "TRACE" else value).upper()


def level_bucket(record: logging.LogRecord) -> int:
    return min(50, max(0, record.levelno)) // 10 * 10


class Unbuffered(object):
    """A stream wrapper that flushes after every write, so output is never held back."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def __enter__(self) -> "Unbuffered":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.stream, attr)

    def write(self, msg: str) -> None:
        self.stream.write(msg)
        self.stream.flush()

    def writelines(self, msgs: Any) -> None:
        self.stream.writelines(msgs)
        self.stream.flush()


class StandardLogSink(object):
    """Log records and error reports written to (the current) sys.stdout."""

    def __enter__(self) -> "StandardLogSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def log(self, msg: str, frame_type: Optional[bytes] = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: List[str], frame_type: Optional[bytes] = None) -> None:
        sys.stdout.write(ERROR_LINE_SEPARATOR.join(message_lines) + "\n")


class FramedTelemetryLogSink(object):
    """Binary frames on a descriptor: type(4) | length(4) | timestamp in µs(8) | message, big-endian."""

    def __init__(self, fd: int) -> None:
        self.fd = int(fd)
        self.file: Any = None

    def __enter__(self) -> "FramedTelemetryLogSink":
        self.file = os.fdopen(self.fd, "wb", 0)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.file.close()

    def log(self, msg: str, frame_type: Optional[bytes] = None) -> None:
        data = msg.encode("utf8")
        stamp = time.time_ns() // 1000
        header = (frame_type or DEFAULT_FRAME_TYPE) + len(data).to_bytes(4, "big") + stamp.to_bytes(8, "big")
        self.file.write(header + data)

    def log_error(self, message_lines: List[str], frame_type: Optional[bytes] = None) -> None:
        self.log("\n".join(message_lines), frame_type=frame_type)


def create_log_sink() -> Any:
    fd = os.environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    if fd is not None:
        return FramedTelemetryLogSink(int(fd))
    return StandardLogSink()


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink: Any) -> None:
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        self.log_sink.log(self.format(record))


class LambdaLoggerHandlerWithFrameType(logging.Handler):
    def __init__(self, log_sink: Any) -> None:
        logging.Handler.__init__(self)
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        frame_type = getattr(record, "_frame_type", None) or TEXT_FRAME_TYPES.get(level_bucket(record))
        self.log_sink.log(text, frame_type=frame_type)


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__["aws_request_id"] = CURRENT.request_id or ""
        record.__dict__["tenant_id"] = CURRENT.tenant_id
        return True


_encode_log_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt=JSON_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.levelno = level_bucket(record)
        record.levelname = logging.getLevelName(record.levelno)
        record.__dict__["_frame_type"] = JSON_FRAME_TYPES.get(record.levelno, JSON_FRAME_TYPES[logging.NOTSET])
        exc_info = record.exc_info
        msg = record.msg
        result: Dict[str, Any] = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": msg if isinstance(msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info and exc_info[0] else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno) if exc_info else None,
        }
        tenant_id = getattr(record, "tenant_id", None)
        if tenant_id is not None:
            result["tenantId"] = tenant_id
        result.update(
            (key, value) for key, value in record.__dict__.items() if key not in _RESERVED_FIELDS and key not in result
        )
        return _encode_log_json({k: v for k, v in result.items() if v is not None}) + "\n"


def setup_logging(log_format: str, log_level: str, log_sink: Any) -> None:
    """Install the runtime's handler on the root logger (UTC timestamps for every formatter)."""
    logging.Formatter.converter = time.gmtime
    handler: logging.Handler
    if log_format == JSON or log_level:
        handler = LambdaLoggerHandlerWithFrameType(log_sink)
    else:
        handler = LambdaLoggerHandler(log_sink)
    if log_format == JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT))
    root = logging.getLogger()
    if isinstance(logging.getLevelName(log_level), int):
        root.setLevel(log_level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


def _reindent(line: str) -> str:
    stripped = line.lstrip(" ")
    return ERROR_INDENT * (len(line) - len(stripped)) + stripped


def make_error_logger(log_format: str, to_json: Callable[[Any], str]) -> Callable[[Dict[str, Any], Any], None]:
    """A function that writes an error document (init or invocation failure) as one log event."""
    if log_format == JSON:
        frame_type = JSON_FRAME_TYPES[logging.ERROR]

        def log_json_error(error: Dict[str, Any], sink: Any) -> None:
            stamp = time.strftime(JSON_DATE_FORMAT, logging.Formatter.converter(time.time()))
            document = {"timestamp": stamp, "level": "ERROR"}
            document.update(error)
            sink.log_error([to_json(document)], frame_type)

        return log_json_error

    text_frame_type = TEXT_FRAME_TYPES[logging.ERROR]

    def log_text_error(error: Dict[str, Any], sink: Any) -> None:
        description = "[ERROR]"
        error_type = error.get("errorType")
        if error_type:
            description += " " + error_type
        message = error.get("errorMessage")
        if message:
            if error_type:
                description += ":"
            description += " " + message
        lines = [description]
        stack_trace = error.get("stackTrace")
        if stack_trace is not None:
            lines.append("Traceback (most recent call last):")
            for element in stack_trace:
                if element == "":
                    lines.append("")
                else:
                    lines.extend(_reindent(line) for line in element.splitlines())
        sink.log_error(lines, text_frame_type)

    return log_text_error
