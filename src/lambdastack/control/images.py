"""Functions packaged as container images (`PackageType=Image`): what their configuration holds.

A stored configuration keeps, under the private member `Image` (the API never shows it):

    Uri       the ImageUri last asked for
    PullId    names that request; every version made while it is pending shares it
    Resolved  what the last successful pull found, with the PullId it answered: the pinned
              URI and digest, the root filesystem's id, and the image's Entrypoint, Cmd,
              Env and WorkingDir. Until a new pull succeeds, the function keeps running the
              image resolved before (as Lambda runs the previous image during an update).

Lambda's rules on the request members are here; `image_activation` does the pulling.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.control.code import CodeRef
from lambdastack.images.reference import ImageReference, InvalidReference

Config = dict[str, Any]

IMAGE = "Image"
NOT_FOR_IMAGES = "Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image."


def is_image(config: Config) -> bool:
    return config.get("PackageType") == "Image"


def image_state(config: Config) -> Config:
    state = config.get(IMAGE)
    return state if isinstance(state, dict) else {}


def resolved(config: Config) -> Config | None:
    """What the function runs: the image resolved last, or None before the first pull succeeded."""
    found = image_state(config).get("Resolved")
    return found if isinstance(found, dict) else None


def is_ready(config: Config) -> bool:
    """Whether the pull the configuration waits for has succeeded."""
    state = image_state(config)
    done = resolved(config)
    return done is not None and done.get("PullId") == state.get("PullId")


def requested_uri(code: dict[str, Any], action: str) -> str:
    """The ImageUri of a CreateFunction `Code` or an UpdateFunctionCode request, checked."""
    uri = code.get("ImageUri")
    if not uri:
        raise errors.InvalidParameterValue(f"Please provide ImageUri when {action} a function with packageType Image.")
    if code.get("ZipFile") or code.get("S3Bucket") or code.get("S3Key") or code.get("S3ObjectVersion"):
        raise errors.InvalidParameterValue(
            f"Please don't provide ZipFile or S3Bucket/S3Key when {action} a function with packageType Image."
        )
    try:
        ImageReference.parse(uri)
    except InvalidReference:
        raise errors.InvalidParameterValue(f"Source image {uri} is not valid. Provide a valid source image.")
    return str(uri)


def require_existing(exists: Callable[[str], bool] | None, uri: str) -> None:
    """Lambda refuses an image its registry does not have, before it accepts the request.

    Only a registry's own "no such manifest" refuses it here; a registry that cannot be
    reached or refuses access is found out by the pull, which fails the function with its
    reason code.
    """
    if exists is not None and not exists(uri):
        raise errors.InvalidParameterValue(f"Source image {uri} does not exist. Provide a valid source image.")


def pending_code(uri: str) -> tuple[CodeRef, str]:
    """The code reference of a new image request (nothing stored yet), and its pull id."""
    pull_id = uuid.uuid4().hex
    digest = ImageReference.parse(uri).digest
    placeholder = hashlib.sha256(f"image:{pull_id}".encode()).hexdigest()
    return CodeRef(placeholder, digest.split(":", 1)[1] if digest else "", 0, 0), pull_id


def with_image(config: Config, uri: str, pull_id: str, code: CodeRef) -> Config:
    """`config` asking for the image at `uri` (the previously resolved one stays until it is ready)."""
    out = dict(config)
    state = dict(image_state(config))
    state.update(Uri=uri, PullId=pull_id)
    out[IMAGE] = state
    out["CodeSha256"] = code.sha256_b64
    out["CodeSize"] = 0
    return out


def check_members(package_type: str, params: dict[str, Any]) -> None:
    """Lambda's rules on which request members go with which package type."""
    if package_type == "Image":
        if params.get("Runtime") or params.get("Handler") or params.get("Layers"):
            raise errors.InvalidParameterValue(NOT_FOR_IMAGES)
    elif params.get("ImageConfig"):
        raise errors.InvalidParameterValue(
            "Please don't provide ImageConfig when the intended function PackageType is Zip."
        )


def apply_image_config(out: Config, params: dict[str, Any]) -> None:
    """ImageConfig replaces the function's overrides as a whole; an empty one removes them."""
    if "ImageConfig" not in params:
        return
    given = params.get("ImageConfig") or {}
    kept = {k: given[k] for k in ("EntryPoint", "Command", "WorkingDirectory") if given.get(k) is not None}
    if kept:
        out["ImageConfigResponse"] = {"ImageConfig": kept}
    else:
        out.pop("ImageConfigResponse", None)


def code_location(config: Config) -> dict[str, Any]:
    """GetFunction's `Code` for an image function."""
    out: dict[str, Any] = {"RepositoryType": "ECR", "ImageUri": image_state(config).get("Uri", "")}
    done = resolved(config)
    if done is not None:
        out["ResolvedImageUri"] = done.get("ResolvedUri", "")
    return out
