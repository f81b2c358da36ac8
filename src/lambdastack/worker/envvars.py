"""The environment variables a function sees, as Lambda sets them."""

from __future__ import annotations

from collections.abc import Mapping

from lambdastack.worker.spec import EnvironmentSpec

# Credentials a function's SDK signs with where the platform mints none (see identity/credentials.py).
FUNCTION_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIALAMBDASTACKLOCAL0",
    "AWS_SECRET_ACCESS_KEY": "lambdastack-local-secret-access-key-00000",
    "AWS_SESSION_TOKEN": "lambdastack-local-session-token",
}


def function_environment(
    spec: EnvironmentSpec, log_stream: str, initialization_type: str = "on-demand",
    platform: Mapping[str, str] | None = None, defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Lambda's variables over the function's own; `platform` (its credentials) over both, and
    `defaults` (endpoints such as AWS_ENDPOINT_URL_LAMBDA) only where the function set none."""
    task_root = "/var/task"
    env: dict[str, str] = {
        "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": (
            "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
        ),
        "LANG": "en_US.UTF-8",
    }
    if spec.runtime.startswith("provided"):
        # OS-only runtimes have no language directory (/var/lang).
        env["PATH"] = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"
        env["LD_LIBRARY_PATH"] = "/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
    env.update(defaults or {})
    env.update(spec.environment)  # users may override PATH, LANG, LD_LIBRARY_PATH
    env.update(
        {
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            **(platform or FUNCTION_CREDENTIALS),
        }
    )
    if initialization_type == "snap-start":
        # Every copy of a snapshot shares its environment: Lambda leaves these two out, and
        # the credentials, which each copy serves fresh at AWS_CONTAINER_CREDENTIALS_FULL_URI.
        del env["AWS_LAMBDA_LOG_GROUP_NAME"], env["AWS_LAMBDA_LOG_STREAM_NAME"]
        if "AWS_CONTAINER_AUTHORIZATION_TOKEN" in env:
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                env.pop(name, None)
    if spec.root is not None:
        # A container image says where its code and runtime are (the AWS base images set both).
        for name in ("LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"):
            if name in spec.environment:
                env[name] = spec.environment[name]
    if spec.handler:
        env["_HANDLER"] = spec.handler
    if spec.runtime.startswith(("python", "nodejs", "java", "dotnet", "ruby")):
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
    if spec.runtime.startswith("python"):
        env.setdefault("PYTHONPATH", "/var/runtime")
    if spec.runtime.startswith("nodejs"):
        major = spec.runtime[len("nodejs"):].split(".")[0]
        env.setdefault("NODE_PATH", f"/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:"
                                    "/var/runtime/node_modules:/var/runtime:/var/task")
    if spec.log_format.upper() == "JSON":
        env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if spec.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level
    return env
