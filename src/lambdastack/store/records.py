"""What the store keeps: functions, their versions and their aliases.

Records are plain values. `VersionRecord.config` holds the FunctionConfiguration members
under the names Lambda gives them (Runtime, Handler, MemorySize, Timeout, Environment,
CodeSha256, RevisionId, State, ...), so that what the API returns and what the engine
runs are read from the same place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LATEST = "$LATEST"

# Members a stored configuration keeps for lambdastack's own use; the API never shows them
# (responses carry only the members of the model's shapes): the function code's unzipped
# size and, in each entry of `Layers`, the content (SHA-256 in hex) and unzipped size of the
# layer version as it was when the layer was attached.
UNZIPPED_CODE_SIZE = "UnzippedCodeSize"
LAYER_SHA256 = "Sha256"
LAYER_UNZIPPED_SIZE = "UnzippedSize"


@dataclass
class FunctionRecord:
    """Function-level data shared by all versions of one function."""

    account: str
    region: str
    name: str
    created: str
    # The highest version number ever published; numbers are never reused.
    last_version: int = 0
    # None when the function has no reserved concurrency.
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class VersionRecord:
    """$LATEST or one published version: an immutable code + configuration snapshot."""

    account: str
    region: str
    function_name: str
    version: str
    config: dict[str, Any]
    code_sha256_hex: str
    # Hash of the code and configuration a published version was made from; PublishVersion
    # compares it to decide whether anything changed. Empty for $LATEST.
    fingerprint: str = ""

    @property
    def number(self) -> int:
        """0 for $LATEST, else the version number: the order versions are listed in."""
        return 0 if self.version == LATEST else int(self.version)


@dataclass
class AliasRecord:
    account: str
    region: str
    function_name: str
    name: str
    function_version: str
    description: str = ""
    # Additional version -> share of traffic (0.0..1.0); the primary gets the remainder.
    weights: dict[str, float] = field(default_factory=dict)
    revision_id: str = ""


@dataclass
class LayerRecord:
    """A layer name: its versions are numbered from 1 and a number is never given out twice."""

    account: str
    region: str
    name: str
    last_version: int = 0


@dataclass
class LayerVersionRecord:
    """One published, immutable version of a layer: a zip stored by SHA-256, and its policy."""

    account: str
    region: str
    layer_name: str
    version: int
    created: str
    code_sha256_hex: str
    code_size: int  # bytes of the zip
    unzipped_size: int
    description: str = ""
    compatible_runtimes: list[str] = field(default_factory=list)
    compatible_architectures: list[str] = field(default_factory=list)
    license_info: str | None = None
    # The statements of the version's resource-based policy, as AddLayerVersionPermission
    # received them: [{"Sid", "Action", "Principal", "OrganizationId"?}].
    policy: list[dict[str, str]] = field(default_factory=list)
    policy_revision: str = ""


@dataclass
class DeploymentRecord:
    """An alias moved from one version to another by a strategy, watched and maybe rolled back."""

    id: str
    account: str
    region: str
    function_name: str
    alias: str
    from_version: str
    to_version: str
    strategy: dict[str, Any]
    health_policy: dict[str, Any]
    status: str  # InProgress | Succeeded | RolledBack | Aborted
    created: str
    updated: str
    reason: str = ""
    weight: float = 0.0  # share of the alias's traffic on `to_version`
    # Live details: the current step, the latest health of both versions, a log of events.
    progress: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProvisionedConcurrencyRecord:
    """Environments kept initialized for a published version or an alias."""

    account: str
    region: str
    function_name: str
    qualifier: str
    requested: int
    last_modified: str
