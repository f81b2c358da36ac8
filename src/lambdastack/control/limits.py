"""Lambda's quotas, and the errors it answers with when a request goes past one."""

from __future__ import annotations

from typing import Any

from lambdastack import errors

ZIP_MAX_BYTES = 50 * 1024 * 1024  # 52428800: a deployment package sent inline
UNZIPPED_MAX_BYTES = 262_144_000  # code and layers, unzipped
TOTAL_CODE_STORAGE = 80_530_636_800  # 75 GB per region
ENV_MAX_BYTES = 4 * 1024
MEMORY_MIN, MEMORY_MAX = 128, 10_240
TIMEOUT_MIN, TIMEOUT_MAX = 1, 900
EPHEMERAL_MIN, EPHEMERAL_MAX = 512, 10_240
MAX_LAYERS = 5
MAX_TAGS = 50
UNRESERVED_FLOOR = 100
# Lambda pages lists at 50 items whatever larger MaxItems the model allows.
PAGE_MAX = 50


def validation_error(value: Any, member: str, constraint: str) -> errors.LambdaError:
    """A ValidationException worded as AWS words model-constraint violations."""
    return errors.Validation(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def check_range(value: int | None, member: str, low: int, high: int) -> None:
    if value is None:
        return
    if value < low:
        raise validation_error(value, member, f"Member must have value greater than or equal to {low}")
    if value > high:
        raise validation_error(value, member, f"Member must have value less than or equal to {high}")
