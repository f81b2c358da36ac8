"""Shared file systems: EFS access point ARNs mapped to host directories (`serve --file-system`).

`--file-system ARN=DIR[:UID:GID]` says that the access point `ARN` is the host directory
`DIR`, and that the access point's POSIX user is `UID:GID` (1000:1000 unless given): every
environment of a function whose `FileSystemConfigs` names the ARN gets `DIR` mounted
read-write at its `LocalMountPath`, and what the function writes there is owned on the host
by that user, as an access point makes every NFS operation that user's. A directory that
does not exist is created at start-up, owned by the user (as an access point's
`CreationInfo` would create its root directory), mode 0755.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_UID = DEFAULT_GID = 1000
# The model's FileSystemArn pattern (EFS access points).
ACCESS_POINT_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:elasticfilesystem:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}"
    r":access-point/fsap-[a-f0-9]{17}"
)


@dataclass(frozen=True)
class FileSystemMapping:
    arn: str
    path: Path
    uid: int = DEFAULT_UID
    gid: int = DEFAULT_GID


def parse_mapping(text: str) -> FileSystemMapping:
    """`ARN=DIR` or `ARN=DIR:UID:GID` (ValueError says what is wrong)."""
    arn, equals, rest = text.partition("=")
    if not equals or not ACCESS_POINT_ARN.fullmatch(arn):
        raise ValueError("expected ARN=DIR[:UID:GID] with the ARN of an EFS access point "
                         "(arn:aws:elasticfilesystem:<region>:<account>:access-point/fsap-<17 hex digits>)")
    parts = rest.split(":")
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        path, uid, gid = parts[0], int(parts[1]), int(parts[2])
    elif len(parts) == 1:
        path, uid, gid = parts[0], DEFAULT_UID, DEFAULT_GID
    else:
        raise ValueError("expected ARN=DIR[:UID:GID] (UID and GID numbers)")
    if not path.startswith("/"):
        raise ValueError("DIR must be an absolute path")
    return FileSystemMapping(arn, Path(path), uid, gid)


def prepare(mapping: FileSystemMapping) -> None:
    """Create the directory if it is missing, owned by the access point's user."""
    if mapping.path.is_dir():
        return
    mapping.path.mkdir(parents=True, mode=0o755)
    if os.geteuid() == 0:
        os.chown(mapping.path, mapping.uid, mapping.gid)
