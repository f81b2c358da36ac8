"""FunctionConfiguration: defaults, the changes a request asks for, and Lambda's rules on them.

The model's own constraints (types, patterns, enums, `min`) are checked by the API layer
before a request gets here; this module adds what the model does not carry: Lambda's
real maxima, environment-variable rules, runtime/handler requirements, layer limits,
logging combinations, and the features lambdastack does not offer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Container
from typing import Any

import orjson

from lambdastack import __version__, errors
from lambdastack.control import images, limits, runtimes
from lambdastack.control.code import CodeRef
from lambdastack.control.names import function_arn
from lambdastack.control.runtimes import check_runtime
from lambdastack.store.records import (
    LATEST,
    LAYER_SHA256,
    LAYER_UNZIPPED_SIZE,
    UNZIPPED_CODE_SIZE,
    LayerVersionRecord,
)

Config = dict[str, Any]
# Finds the layer version a function names by its version ARN (None: no such version here).
LayerLookup = Callable[[str], LayerVersionRecord | None]
# The EFS access point ARNs this server maps to host directories (`serve --file-system`).
KnownFileSystems = Container[str]

RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    }
)

# Members of a FunctionConfiguration that change on every save and say nothing about
# what the function is; PublishVersion ignores them when it looks for changes.
_VOLATILE = frozenset(
    {
        "FunctionArn",
        "Version",
        "RevisionId",
        "LastModified",
        "State",
        "StateReason",
        "StateReasonCode",
        "LastUpdateStatus",
        "LastUpdateStatusReason",
        "LastUpdateStatusReasonCode",
    }
)

# Request members that name features lambdastack does not provide.
_UNSUPPORTED = {
    "TenancyConfig": "Tenant isolation",
    "CapacityProviderConfig": "Capacity providers",
    "DurableConfig": "Durable functions",
    "RuntimeConfig": "Customer-managed runtimes",
    "AcceleratorConfig": "Accelerators",
    "PublishTo": "Publishing to LATEST_PUBLISHED",
}


def timestamp(now: dt.datetime | None = None) -> str:
    """Lambda's LastModified format: 2024-01-01T00:00:00.000+0000."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


def new_revision() -> str:
    return str(uuid.uuid4())


def fingerprint(config: Config) -> str:
    """Identity of a configuration and its code, ignoring bookkeeping members."""
    stable = {k: v for k, v in config.items() if k not in _VOLATILE}
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()


def refuse_unsupported(params: dict[str, Any]) -> None:
    for member, feature in _UNSUPPORTED.items():
        if params.get(member):
            raise errors.InvalidParameterValue(f"{feature} ({member}) is not supported by lambdastack.")


def new_config(
    account: str,
    region: str,
    name: str,
    params: dict[str, Any],
    code: CodeRef,
    *,
    layers: LayerLookup | None = None,
    file_systems: KnownFileSystems = (),
) -> Config:
    """The $LATEST configuration of a function being created (state members not yet set)."""
    refuse_unsupported(params)
    package_type = params.get("PackageType") or "Zip"
    images.check_members(package_type, params)
    if package_type == "Zip" and (not params.get("Runtime") or not params.get("Handler")):
        raise errors.InvalidParameterValue(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages."
        )
    config: Config = {
        "FunctionName": name,
        "FunctionArn": function_arn(account, region, name),
        "Runtime": params.get("Runtime"),
        "Role": params["Role"],
        "Handler": params.get("Handler"),
        "CodeSize": code.size,
        "Description": "",
        "Timeout": 3,
        "MemorySize": 128,
        "CodeSha256": code.sha256_b64,
        UNZIPPED_CODE_SIZE: code.unzipped_size,
        "Version": LATEST,
        "TracingConfig": {"Mode": "PassThrough"},
        "PackageType": package_type,
        "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": 512},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"},
    }
    if params.get("Architectures"):
        config["Architectures"] = list(params["Architectures"])
    if package_type == "Image":
        del config["Runtime"], config["Handler"]  # an image says how it starts
    return apply_changes(config, params, creating=True, layers=layers, file_systems=file_systems)


def apply_changes(
    config: Config, params: dict[str, Any], *, creating: bool = False, layers: LayerLookup | None = None,
    file_systems: KnownFileSystems = (),
) -> Config:
    """A copy of `config` with the members of an UpdateFunctionConfiguration-like request applied.

    `layers` finds the layer versions that `Layers` names; without it, none is found.
    `file_systems` are the access point ARNs `FileSystemConfigs` may name.
    """
    refuse_unsupported(params)
    images.check_members(config.get("PackageType") or "Zip", params)
    out = dict(config)
    images.apply_image_config(out, params)
    for member in ("Role", "Handler", "Description", "Timeout", "MemorySize", "Runtime"):
        if member in params:
            out[member] = params[member]
    if "Runtime" in params:
        check_runtime(params["Runtime"])
    limits.check_range(params.get("MemorySize"), "memorySize", limits.MEMORY_MIN, limits.MEMORY_MAX)
    limits.check_range(params.get("Timeout"), "timeout", limits.TIMEOUT_MIN, limits.TIMEOUT_MAX)
    if "EphemeralStorage" in params:
        size = params["EphemeralStorage"].get("Size")
        limits.check_range(size, "ephemeralStorage.size", limits.EPHEMERAL_MIN, limits.EPHEMERAL_MAX)
        out["EphemeralStorage"] = {"Size": size}
    if "Environment" in params:
        variables = dict(params["Environment"].get("Variables") or {})
        check_environment(variables)
        # Sent empty, it is echoed empty (as AWS does).
        out["Environment"] = {"Variables": variables}
    if "Layers" in params:
        function_arn = out.get("FunctionArn", "").split(":")
        region = function_arn[3] if len(function_arn) > 3 else None
        attached = attach_layers(out.get("Layers") or [], check_layers(list(params["Layers"])), layers, region)
        if attached:
            out["Layers"] = attached
        else:
            out.pop("Layers", None)
        check_unzipped_total(out)
    if "TracingConfig" in params:
        out["TracingConfig"] = {"Mode": params["TracingConfig"].get("Mode", "PassThrough")}
    if "DeadLetterConfig" in params:
        target = params["DeadLetterConfig"].get("TargetArn")
        if target:
            out["DeadLetterConfig"] = {"TargetArn": target}
        else:
            out.pop("DeadLetterConfig", None)
    if "KMSKeyArn" in params:
        if params["KMSKeyArn"]:
            out["KMSKeyArn"] = params["KMSKeyArn"]
        else:
            out.pop("KMSKeyArn", None)
    if "VpcConfig" in params:
        vpc = vpc_config(params["VpcConfig"] or {})
        if vpc:
            out["VpcConfig"] = vpc
        else:
            out.pop("VpcConfig", None)
    if "FileSystemConfigs" in params:
        mounts = file_system_configs(params["FileSystemConfigs"] or [], file_systems)
        if mounts:
            out["FileSystemConfigs"] = mounts
        else:
            out.pop("FileSystemConfigs", None)
    if "VpcConfig" in params or "FileSystemConfigs" in params:
        check_file_systems_in_vpc(out, removing_vpc="VpcConfig" in params and "VpcConfig" not in out)
    if "SnapStart" in params:
        out["SnapStart"] = {
            "ApplyOn": params["SnapStart"].get("ApplyOn", "None"),
            "OptimizationStatus": "Off",
        }
    if "SnapStart" in params or "Runtime" in params or "FileSystemConfigs" in params:
        check_snapstart(out)
    if "LoggingConfig" in params:
        out["LoggingConfig"] = logging_config(out.get("LoggingConfig") or {}, params["LoggingConfig"], out)
    return out


def vpc_config(given: Config) -> Config:
    """The stored VpcConfig (empty when no subnet or security group is given: no VPC).

    lambdastack has no VPCs: the configuration is kept and shown as given (its `VpcId` is
    empty, there being no subnet to look it up from) and the function's network stays what
    `serve --egress` makes it.
    """
    subnets = list(given.get("SubnetIds") or [])
    groups = list(given.get("SecurityGroupIds") or [])
    if not subnets and not groups:
        return {}
    return {
        "SubnetIds": subnets,
        "SecurityGroupIds": groups,
        "VpcId": "",
        "Ipv6AllowedForDualStack": bool(given.get("Ipv6AllowedForDualStack", False)),
    }


def file_system_configs(given: list[Config], known: KnownFileSystems) -> list[Config]:
    """The stored FileSystemConfigs: each access point must be one `serve --file-system` maps."""
    mounts: list[Config] = []
    for entry in given:
        arn, path = str(entry.get("Arn") or ""), str(entry.get("LocalMountPath") or "")
        if arn not in known:
            raise errors.InvalidParameterValue(
                f"The file system access point {arn} is not known to this lambdastack server: map it to a host "
                f"directory with lambdastack serve --file-system {arn}=DIR"
            )
        mounts.append({"Arn": arn, "LocalMountPath": path})
    return mounts


def check_file_systems_in_vpc(config: Config, removing_vpc: bool) -> None:
    """As on Lambda, a function that mounts an access point must be configured in a VPC."""
    if config.get("VpcConfig"):
        return
    for mount in config.get("FileSystemConfigs") or ():
        if removing_vpc:
            raise errors.InvalidParameterValue(
                f"Function VPC configuration cannot be removed with access point {mount['Arn']} referenced."
            )
        raise errors.InvalidParameterValue(
            f"Function must be configured to execute in a VPC to reference access point {mount['Arn']}"
        )


def snapstart_on(config: Config) -> bool:
    return (config.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"


def check_snapstart(config: Config) -> None:
    """SnapStart is for zip packages on the runtimes that offer it (Python 3.12 and later here)."""
    if not snapstart_on(config):
        return
    if config.get("PackageType") == "Image":
        raise errors.InvalidParameterValue("ContainerImage is not supported for SnapStart enabled functions.")
    if config.get("FileSystemConfigs"):
        raise errors.InvalidParameterValue("EFS is not supported for SnapStart enabled functions.")
    runtime = config.get("Runtime") or ""
    if not runtimes.supports_snapstart(runtime):
        raise errors.InvalidParameterValue(f"{runtime} is not supported for SnapStart enabled functions.")


def check_environment(variables: dict[str, str]) -> None:
    reserved = sorted(k for k in variables if k in RESERVED_ENV)
    if reserved:
        raise errors.InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables you "
            "have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = orjson.dumps(variables).decode()
    if len(measured.encode()) > limits.ENV_MAX_BYTES:
        shown = measured if len(measured) <= 256 else measured[:253] + "..."
        raise errors.InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables you "
            f"have provided exceeded the 4KB limit. String measured: {shown}"
        )


def check_layers(arns: list[str]) -> list[str]:
    if len(arns) > limits.MAX_LAYERS:
        raise errors.InvalidParameterValue(f"Cannot reference more than {limits.MAX_LAYERS} layers.")
    first_of: dict[str, str] = {}
    for arn in arns:
        name = arn.rsplit(":", 1)[0]
        if name in first_of:
            raise errors.InvalidParameterValue(
                "Two different versions of the same layer are not allowed to be referenced in the same function. "
                f"{first_of[name]} and {arn} are versions of the same layer."
            )
        first_of[name] = arn
    return arns


def attach_layers(
    current: list[Config], arns: list[str], lookup: LayerLookup | None, region: str | None = None
) -> list[Config]:
    """The `Layers` of a configuration naming `arns`, in order, each with a snapshot of its version.

    A layer the function already has keeps its snapshot (its version may have been deleted
    since); a new one must exist.
    """
    kept = {layer["Arn"]: layer for layer in current}
    attached: list[Config] = []
    if region is not None and any(arn.split(":")[3:4] != [region] for arn in arns if arn not in kept):
        raise errors.InvalidParameterValue(
            f"Layers are not in the same region as the function. Layers are expected to be in region {region}."
        )
    for arn in arns:
        if arn in kept:
            attached.append(dict(kept[arn]))
            continue
        record = lookup(arn) if lookup is not None else None
        if record is None:
            raise errors.InvalidParameterValue(f"Layer version {arn} does not exist.")
        attached.append(
            {
                "Arn": arn,
                "CodeSize": record.code_size,
                LAYER_SHA256: record.code_sha256_hex,
                LAYER_UNZIPPED_SIZE: record.unzipped_size,
            }
        )
    return attached


def layer_shas(config: Config) -> set[str]:
    """The content (SHA-256 in hex) of every layer a configuration has snapshotted."""
    return {layer[LAYER_SHA256] for layer in config.get("Layers") or () if layer.get(LAYER_SHA256)}


def check_unzipped_total(config: Config) -> None:
    """Function code and layers together unzip to at most 250 MB, as on Lambda."""
    total = int(config.get(UNZIPPED_CODE_SIZE) or 0)
    total += sum(int(layer.get(LAYER_UNZIPPED_SIZE) or 0) for layer in config.get("Layers") or ())
    if total > limits.UNZIPPED_MAX_BYTES:
        raise errors.InvalidParameterValue(
            f"Function code combined with layers exceeds the maximum allowed size of {limits.UNZIPPED_MAX_BYTES} "
            f"bytes. The actual size is {total} bytes."
        )


def logging_config(current: Config, given: Config, config: Config) -> Config:
    merged = {**current, **given}
    merged.setdefault("LogGroup", f"/aws/lambda/{config['FunctionName']}")
    merged.setdefault("LogFormat", "Text")
    levels = ("ApplicationLogLevel", "SystemLogLevel")
    if merged["LogFormat"] == "Text":
        if any(level in given for level in levels):
            raise errors.InvalidParameterValue(
                "Application log level and system log level can only be set when LogFormat is JSON."
            )
        for level in levels:
            merged.pop(level, None)
    else:
        merged.setdefault("ApplicationLogLevel", "INFO")
        merged.setdefault("SystemLogLevel", "INFO")
    return merged


def with_code(config: Config, code: CodeRef, architectures: list[str] | None = None) -> Config:
    out = dict(config)
    out["CodeSha256"] = code.sha256_b64
    out["CodeSize"] = code.size
    out[UNZIPPED_CODE_SIZE] = code.unzipped_size
    if architectures:
        out["Architectures"] = list(architectures)
    check_unzipped_total(out)
    return out


def touched(config: Config) -> Config:
    """Mark a saved change: new RevisionId, new LastModified (and the runtime version it runs on)."""
    out = dict(config)
    out["RevisionId"] = new_revision()
    out["LastModified"] = timestamp()
    if out.get("Runtime") and out.get("PackageType", "Zip") == "Zip":
        region = out["FunctionArn"].split(":")[3]
        out["RuntimeVersionConfig"] = {"RuntimeVersionArn": runtime_version_arn(region, out["Runtime"])}
    else:
        out.pop("RuntimeVersionConfig", None)
    return out


def runtime_version_arn(region: str, runtime: str) -> str:
    """The runtime version a function runs on, as Lambda names one: a digest of the runtime and
    of this lambdastack release (which ships the runtime's client and bootstrap)."""
    digest = hashlib.sha256(f"lambdastack:{__version__}:{runtime}".encode()).hexdigest()
    return f"arn:aws:lambda:{region}::runtime:{digest}"


# What a list entry (ListFunctions, ListVersionsByFunction) leaves out, as AWS does.
_NOT_LISTED = (
    "State", "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason",
    "LastUpdateStatusReasonCode", "RuntimeVersionConfig",
)


def render_listed(config: Config, qualifier: str | None) -> Config:
    """A configuration as a list entry shows it."""
    return {k: v for k, v in render(config, qualifier).items() if k not in _NOT_LISTED}


def as_version(config: Config, account: str, region: str, version: str, description: str | None) -> Config:
    """The snapshot a published version keeps of $LATEST."""
    out = touched(config)
    out["Version"] = version
    out["FunctionArn"] = function_arn(account, region, config["FunctionName"], version)
    if snapstart_on(config):
        out["SnapStart"] = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    if description is not None:
        out["Description"] = description
    return out


def render(config: Config, qualifier: str | None) -> Config:
    """The configuration as returned for a request naming `qualifier` (None: unqualified)."""
    out = dict(config)
    base = out["FunctionArn"].rsplit(":function:", 1)[0] + ":function:" + out["FunctionName"]
    out["FunctionArn"] = f"{base}:{qualifier}" if qualifier else base
    return out
