"""Where a request's deployment package comes from: inline (`ZipFile`) or Amazon S3.

`requested` checks the members of a `FunctionCode` / `LayerVersionContentInput` as Lambda
does (one source, both S3Bucket and S3Key); `read` turns the request into the bytes of the
package, with the size limit that source has (50 MB inline; from S3 only the 250 MB
unzipped limit applies, as on Lambda).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdastack import errors
from lambdastack.control.limits import UNZIPPED_MAX_BYTES, ZIP_MAX_BYTES
from lambdastack.control.s3code import S3CodeSource, S3Location

ZIP_AND_S3 = "Please do not provide other FunctionCode parameters when providing a ZipFile."
NO_SOURCE = "Please provide a source for function code."


@dataclass(frozen=True)
class PackageRequest:
    """The package a request names: inline bytes or an S3 object."""

    inline: bytes | None = None
    s3: S3Location | None = None


@dataclass(frozen=True)
class Package:
    data: bytes
    max_zipped: int  # the largest zip this source may deliver


def has_s3(members: dict[str, Any]) -> bool:
    return any(members.get(m) for m in ("S3Bucket", "S3Key", "S3ObjectVersion"))


def requested(members: dict[str, Any], no_source: str = NO_SOURCE) -> PackageRequest:
    """The source of a package; `no_source` is the refusal when none is given."""
    data = members.get("ZipFile")
    if data:
        if has_s3(members):
            raise errors.InvalidParameterValue(ZIP_AND_S3)
        return PackageRequest(inline=bytes(data))
    bucket, key = members.get("S3Bucket"), members.get("S3Key")
    if bucket and key:
        return PackageRequest(s3=S3Location(str(bucket), str(key), members.get("S3ObjectVersion") or None))
    if has_s3(members):
        raise errors.InvalidParameterValue(
            "Please provide both S3Bucket and S3Key to deploy code from Amazon S3 "
            f"(given: {', '.join(m for m in ('S3Bucket', 'S3Key', 'S3ObjectVersion') if members.get(m))})."
        )
    raise errors.InvalidParameterValue(no_source)


def read(request: PackageRequest, source: S3CodeSource | None, region: str) -> Package:
    """The bytes of the package (read from S3 now, if that is where it is)."""
    if request.inline is not None:
        return Package(request.inline, ZIP_MAX_BYTES)
    assert request.s3 is not None
    return Package((source or S3CodeSource(None)).fetch(request.s3, region), UNZIPPED_MAX_BYTES)
