"""The functions every system under comparison runs: the same source files, the same events."""

from __future__ import annotations

from bench.common import NOOP

__all__ = ["HANDLER", "NOOP", "SLOW_INIT"]

# An init of at least a second, as the SnapStart goal describes: numpy's import, then a sleep.
SLOW_INIT = '''import os
import time

import numpy

time.sleep(1.0)


def handler(event, context):
    return {"numpy": numpy.__version__, "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
'''

MODULE = "app"
FUNCTION = "handler"
HANDLER = f"{MODULE}.{FUNCTION}"
