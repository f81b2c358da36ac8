"""Which runtimes a function may use.

By default every runtime of Lambda's model is accepted except those Lambda itself no
longer lets anyone create or update functions with. `SUPPORTED` narrows that to the
runtimes this host can actually run once the engine knows which it has.
"""

from __future__ import annotations

import functools

from lambdastack import errors
from lambdastack.service_models import lambda_model

# Runtimes Lambda blocks for function creation and update (deprecated and past the block date).
DEPRECATED: dict[str, str] = {
    "nodejs": "nodejs22.x",
    "nodejs4.3": "nodejs22.x",
    "nodejs4.3-edge": "nodejs22.x",
    "nodejs6.10": "nodejs22.x",
    "nodejs8.10": "nodejs22.x",
    "nodejs10.x": "nodejs22.x",
    "nodejs12.x": "nodejs22.x",
    "nodejs14.x": "nodejs22.x",
    "nodejs16.x": "nodejs22.x",
    "java8": "java21",
    "python2.7": "python3.13",
    "python3.6": "python3.13",
    "python3.7": "python3.13",
    "python3.8": "python3.13",
    "dotnetcore1.0": "dotnet8",
    "dotnetcore2.0": "dotnet8",
    "dotnetcore2.1": "dotnet8",
    "dotnetcore3.1": "dotnet8",
    "dotnet6": "dotnet8",
    "go1.x": "provided.al2023",
    "ruby2.5": "ruby3.3",
    "ruby2.7": "ruby3.3",
    "provided": "provided.al2023",
}

# None: any runtime of the model that is not deprecated. A set: only these.
SUPPORTED: set[str] | None = None


@functools.cache
def _model_runtimes() -> tuple[str, ...]:
    return tuple(lambda_model().shape("Runtime")["enum"])


def check_runtime(runtime: str) -> None:
    """Raise InvalidParameterValueException unless functions may be created with `runtime`."""
    if runtime in DEPRECATED:
        raise errors.InvalidParameterValue(
            f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS "
            f"Lambda functions. We recommend you use the new runtime ({DEPRECATED[runtime]}) while "
            "creating or updating functions."
        )
    if runtime not in _model_runtimes():
        offered = ", ".join(r for r in _model_runtimes() if r not in DEPRECATED)
        raise errors.InvalidParameterValue(
            f"Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: "
            f"[{offered}] or be a valid ARN"
        )
    if SUPPORTED is not None and runtime not in SUPPORTED:
        offered = ", ".join(sorted(SUPPORTED)) or "none"
        raise errors.InvalidParameterValue(
            f"The runtime parameter of {runtime} is not supported by this lambdastack host. "
            f"Supported runtimes: {offered}."
        )


def supports_snapstart(runtime: str) -> bool:
    """Lambda offers SnapStart on Java 11+, Python 3.12+ and .NET 8+; lambdastack runs the Python ones."""
    if runtime.startswith("python3."):
        minor = runtime[len("python3."):]
        return minor.isdigit() and int(minor) >= 12
    return False
