"""From a stored version to what a worker needs to run it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lambdastack import errors
from lambdastack.file_systems import FileSystemMapping
from lambdastack.invoke.image_launch import image_launch
from lambdastack.store.records import LATEST, LAYER_SHA256, VersionRecord
from lambdastack.worker import java
from lambdastack.worker.entrypoint import bootstrap_path
from lambdastack.worker.loader import needs_fresh_process
from lambdastack.worker.nodejs import node_argv
from lambdastack.worker.spec import EnvironmentSpec, SharedFileSystem

CodePath = Callable[[str], Path]


def shared_file_systems(
    config: dict, known: Mapping[str, FileSystemMapping], unavailable: str | None = None
) -> tuple[SharedFileSystem, ...]:
    """The host directories a version's FileSystemConfigs stand for on this server
    (`unavailable`: why this server cannot mount any)."""
    mounts: list[SharedFileSystem] = []
    for entry in config.get("FileSystemConfigs") or ():
        if unavailable:
            raise errors.EFSMountFailure(
                f"The function could not mount the file system access point {entry['Arn']}: {unavailable}"
            )
        mapping = known.get(entry["Arn"])
        if mapping is None:  # the server was started again without its --file-system
            raise errors.EFSMountFailure(
                f"The function could not mount the file system access point {entry['Arn']}: this lambdastack server "
                f"does not map it to a directory (lambdastack serve --file-system {entry['Arn']}=DIR)."
            )
        mounts.append(SharedFileSystem(mapping.path, entry["LocalMountPath"], mapping.uid, mapping.gid))
    return tuple(mounts)


def environment_spec(
    record: VersionRecord, code_path: CodePath, file_systems: Mapping[str, FileSystemMapping] | None = None,
    file_systems_unavailable: str | None = None,
) -> EnvironmentSpec:
    config = record.config
    runtime = config.get("Runtime") or ""
    environment = dict((config.get("Environment") or {}).get("Variables") or {})
    memory_mb = int(config.get("MemorySize") or 128)
    argv: tuple[str, ...] | None = None
    root: Path | None = None
    cwd: str | None = None
    code_dir: Path | None = None
    opt_dirs: tuple[Path, ...] = ()
    if config.get("PackageType") == "Image":
        image = image_launch(config, code_path)
        root, argv, cwd = image.root, image.argv, image.cwd
        environment = {**image.environment, **environment}  # the function's variables over the image's
    else:
        code_dir = code_path(record.code_sha256_hex)
        opt_dirs = tuple(code_path(layer[LAYER_SHA256]) for layer in config.get("Layers") or ())
    if runtime.startswith("provided"):
        # /opt shows the layers merged: the last layer with a bootstrap provides it.
        argv = (bootstrap_path(code_dir, next((d for d in reversed(opt_dirs) if (d / "bootstrap").exists()), None)),)
    elif runtime.startswith("nodejs"):
        argv = node_argv(memory_mb, environment)
    elif runtime.startswith("java"):
        argv = java.runtime_argv(runtime, memory_mb)
    if argv is not None and runtime.startswith(("nodejs", "java")) and environment.get("AWS_LAMBDA_EXEC_WRAPPER"):
        argv = (environment["AWS_LAMBDA_EXEC_WRAPPER"], *argv)
    logging_config = config.get("LoggingConfig") or {}
    key = spec_key(record)
    fresh = runtime.startswith("python") and needs_fresh_process(code_dir, opt_dirs, environment)
    # Copies are forks of the built-in Python runtime; a runtime started by exec is not one.
    snapstart = (
        record.version != LATEST and runtime.startswith("python") and argv is None and not fresh
        and (config.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"
    )
    return EnvironmentSpec(
        key=key,
        function_name=record.function_name,
        version=record.version,
        runtime=runtime,
        handler=config.get("Handler"),
        memory_mb=memory_mb,
        timeout_s=int(config.get("Timeout") or 3),
        ephemeral_mb=int((config.get("EphemeralStorage") or {}).get("Size") or 512),
        region=record.region,
        account=record.account,
        code_dir=code_dir,
        opt_dirs=opt_dirs,
        environment=environment,
        log_format=logging_config.get("LogFormat") or "Text",
        log_level=logging_config.get("ApplicationLogLevel"),
        log_group=logging_config.get("LogGroup") or "",
        argv=argv,
        root=root,
        cwd=cwd,
        architecture=(config.get("Architectures") or ["x86_64"])[0],
        file_systems=shared_file_systems(config, file_systems or {}, file_systems_unavailable),
        fresh_runtime_process=fresh,
        snapstart=snapstart,
        function_arn=config.get("FunctionArn") or "",
        role=config.get("Role") or "",
    )


def spec_key(record: VersionRecord) -> str:
    """What makes environments interchangeable: the version and its revision."""
    return f"{record.account}:{record.region}:{record.function_name}:{record.version}:{record.config.get('RevisionId')}"


def parse_spec_key(key: str) -> tuple[str, str, str, str, str]:
    account, region, name, version, revision = key.split(":", 4)
    return account, region, name, version, revision


def spec_key_prefix(account: str, region: str, name: str) -> str:
    return f"{account}:{region}:{name}:"
