"""Layers: published, immutable zips that functions mount, merged and in order, at /opt.

A layer name holds versions numbered 1, 2, ... (a number is never given out twice, not
even after every version was deleted). The zip of a version is stored like function code
(once per SHA-256, unpacked once, `CodeStore`), so a layer used by many functions exists
once on disk. A function snapshots what it needs of each layer version when the layer is
attached (see `configuration.attach_layers`): deleting the version later does not break
it, and the content stays until no function version refers to it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.control import configuration, packages, pagination, policy_documents
from lambdastack.control.common import Deps, check_revision
from lambdastack.control.configuration import LayerLookup
from lambdastack.control.limits import validation_error
from lambdastack.control.names import FunctionRef
from lambdastack.store.base import Transaction
from lambdastack.store.records import LayerRecord, LayerVersionRecord

_LAYER_ARN = re.compile(r"arn:(aws[a-zA-Z-]*):lambda:([a-z0-9-]+):(\d{12}):layer:([a-zA-Z0-9-_]+)")
_LAYER_NAME = re.compile(r"[a-zA-Z0-9-_]+")



@dataclass(frozen=True)
class LayerRef:
    """A layer named in a request (by name or ARN), in the caller's account and region."""

    account: str
    region: str
    name: str

    @property
    def arn(self) -> str:
        return layer_arn(self.account, self.region, self.name)

    def version_arn(self, version: int | str) -> str:
        return f"{self.arn}:{version}"


def layer_arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:layer:{name}"


def parse_layer_name(text: str, account: str, region: str) -> LayerRef:
    """A layer name or layer ARN; an ARN of another account or region names nothing here."""
    m = _LAYER_ARN.fullmatch(text)
    if m is not None:
        if (m.group(2), m.group(3)) != (region, account):
            raise errors.ResourceNotFound(f"Layer not found: {text}")
        return LayerRef(account, region, m.group(4))
    if not _LAYER_NAME.fullmatch(text):
        raise errors.InvalidParameterValue(f"Invalid layer name: {text}")
    return LayerRef(account, region, text)


def parse_version_number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise validation_error(value, "versionNumber", "Member must be a number")


def lookup_in(tx: Transaction, where: FunctionRef) -> LayerLookup:
    """Find the layer version a function names by its version ARN (None: there is none here)."""
    account, region = where.account, where.region

    def lookup(arn: str) -> LayerVersionRecord | None:
        m = _LAYER_ARN.fullmatch(arn.rsplit(":", 1)[0])
        version = arn.rsplit(":", 1)[-1]
        if m is None or not version.isdigit() or (m.group(2), m.group(3)) != (region, account):
            return None
        return tx.get_layer_version(account, region, m.group(4), int(version))

    return lookup


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def _positive(version: int) -> None:
    if version < 1:
        raise errors.InvalidParameterValue("Layer Version Cannot be less than 1")


def _version_not_found(ref: LayerRef, version: int) -> errors.LambdaError:
    return errors.ResourceNotFound(f"Layer version {ref.version_arn(version)} does not exist.")


def _matches(record: LayerVersionRecord, runtime: str | None, architecture: str | None) -> bool:
    return (runtime is None or runtime in record.compatible_runtimes) and (
        architecture is None or architecture in record.compatible_architectures
    )


def _summary(record: LayerVersionRecord) -> dict[str, Any]:
    """A LayerVersionsListItem."""
    ref = LayerRef(record.account, record.region, record.layer_name)
    out: dict[str, Any] = {
        "LayerVersionArn": ref.version_arn(record.version),
        "Version": record.version,
        "Description": record.description,
        "CreatedDate": record.created,
    }
    if record.compatible_runtimes:
        out["CompatibleRuntimes"] = list(record.compatible_runtimes)
    if record.compatible_architectures:
        out["CompatibleArchitectures"] = list(record.compatible_architectures)
    if record.license_info is not None:
        out["LicenseInfo"] = record.license_info
    return out


def _statement(record: LayerVersionRecord, grant: dict[str, str]) -> dict[str, Any]:
    ref = LayerRef(record.account, record.region, record.layer_name)
    statement: dict[str, Any] = {
        "Sid": grant["Sid"],
        "Effect": "Allow",
        "Principal": policy_documents.principal(grant["Principal"]),
        "Action": grant["Action"],
        "Resource": ref.version_arn(record.version),
    }
    if grant.get("OrganizationId"):
        statement["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": grant["OrganizationId"]}}
    return statement


def _policy(record: LayerVersionRecord) -> str:
    return policy_documents.document([_statement(record, grant) for grant in record.policy])


class LayerService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def render(self, record: LayerVersionRecord, base_url: str) -> dict[str, Any]:
        """A GetLayerVersionResponse (PublishLayerVersionResponse has the same members)."""
        ref = LayerRef(record.account, record.region, record.layer_name)
        out = _summary(record)
        out.update(
            LayerArn=ref.arn,
            Content={
                "Location": self.deps.signer.url(base_url, record.code_sha256_hex),
                "CodeSha256": _b64(record.code_sha256_hex),
                "CodeSize": record.code_size,
            },
        )
        return out

    # -- versions ------------------------------------------------------------------------

    def publish(self, ref: LayerRef, params: dict[str, Any], base_url: str) -> dict[str, Any]:
        request = packages.requested(
            params.get("Content") or {},
            "Please provide the layer content: a .zip file inline as Content.ZipFile, or Content.S3Bucket and S3Key.",
        )
        package = packages.read(request, self.deps.s3_code, ref.region)
        code = self.deps.code.put_zip(package.data, package.max_zipped)
        try:
            with self.deps.store.transaction() as tx:
                layer = tx.get_layer(ref.account, ref.region, ref.name) or LayerRecord(
                    ref.account, ref.region, ref.name
                )
                layer.last_version += 1
                record = LayerVersionRecord(
                    account=ref.account,
                    region=ref.region,
                    layer_name=ref.name,
                    version=layer.last_version,
                    created=configuration.timestamp(),
                    code_sha256_hex=code.sha256_hex,
                    code_size=code.size,
                    unzipped_size=code.unzipped_size,
                    description=params.get("Description", ""),
                    compatible_runtimes=list(params.get("CompatibleRuntimes") or []),
                    compatible_architectures=list(params.get("CompatibleArchitectures") or []),
                    license_info=params.get("LicenseInfo"),
                )
                tx.put_layer(layer)
                tx.put_layer_version(record)
        except BaseException:
            self.deps.release_code(code.sha256_hex)
            raise
        return self.render(record, base_url)

    def _require(self, tx: Transaction, ref: LayerRef, version: int) -> LayerVersionRecord:
        record = tx.get_layer_version(ref.account, ref.region, ref.name, version)
        if record is None:
            raise errors.ResourceNotFound("The resource you requested does not exist.")
        return record

    def get(self, ref: LayerRef, version: int, base_url: str) -> dict[str, Any]:
        _positive(version)
        with self.deps.store.read() as tx:
            record = self._require(tx, ref, version)
        return self.render(record, base_url)

    def get_by_arn(self, arn: str, account: str, region: str, base_url: str) -> dict[str, Any]:
        name, _, version = arn.rpartition(":")
        if not version.isdigit():
            raise errors.InvalidParameterValue(f"Invalid layer version ARN: {arn}")
        return self.get(parse_layer_name(name, account, region), int(version), base_url)

    def delete(self, ref: LayerRef, version: int) -> None:
        """Delete a version; deleting one that does not exist is not an error (as on Lambda)."""
        _positive(version)
        with self.deps.store.transaction() as tx:
            record = tx.get_layer_version(ref.account, ref.region, ref.name, version)
            if record is None:
                return
            tx.delete_layer_version(ref.account, ref.region, ref.name, version)
        self.deps.release_code(record.code_sha256_hex)

    def list_versions(
        self,
        ref: LayerRef,
        *,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        after = pagination.decode(marker, pagination.is_int)
        size = pagination.page_size(max_items)
        with self.deps.store.read() as tx:
            versions = tx.list_layer_versions(ref.account, ref.region, ref.name)
        matching = [
            v for v in versions if _matches(v, runtime, architecture) and (after is None or v.version < after)
        ]
        page = matching[:size]
        out: dict[str, Any] = {"LayerVersions": [_summary(v) for v in page]}
        if len(matching) > size:
            out["NextMarker"] = pagination.encode(page[-1].version)
        return out

    def list_layers(
        self,
        account: str,
        region: str,
        *,
        runtime: str | None,
        architecture: str | None,
        marker: str | None,
        max_items: int | None,
    ) -> dict[str, Any]:
        after = pagination.decode(marker, pagination.is_str)
        size = pagination.page_size(max_items)
        with self.deps.store.read() as tx:
            versions = tx.list_layer_versions(account, region)
        latest: dict[str, LayerVersionRecord] = {}
        for v in versions:  # by name, newest first: the first match of a name is its latest
            if (after is None or v.layer_name > after) and _matches(v, runtime, architecture):
                latest.setdefault(v.layer_name, v)
        names = list(latest)
        out: dict[str, Any] = {
            "Layers": [
                {
                    "LayerName": name,
                    "LayerArn": layer_arn(account, region, name),
                    "LatestMatchingVersion": _summary(latest[name]),
                }
                for name in names[:size]
            ]
        }
        if len(names) > size:
            out["NextMarker"] = pagination.encode(names[size - 1])
        return out

    # -- policies --------------------------------------------------------------------------

    def add_permission(self, ref: LayerRef, version: int, params: dict[str, Any]) -> dict[str, Any]:
        sid = params["StatementId"]
        grant = {"Sid": sid, "Action": params["Action"], "Principal": params["Principal"]}
        if params.get("OrganizationId"):
            if params["Principal"] != "*":
                raise errors.InvalidParameterValue(
                    "OrganizationId can only be specified together with the Principal '*'."
                )
            grant["OrganizationId"] = params["OrganizationId"]
        with self.deps.store.transaction() as tx:
            record = tx.get_layer_version(ref.account, ref.region, ref.name, version)
            if record is None:
                raise _version_not_found(ref, version)
            check_revision(params.get("RevisionId"), record.policy_revision, api="GetLayerPolicy")  # AWS's words
            if any(g["Sid"] == sid for g in record.policy):
                raise errors.ResourceConflict(policy_documents.DUPLICATE_SID.format(sid=sid))
            record.policy = [*record.policy, grant]
            if len(_policy(record).encode()) > policy_documents.POLICY_MAX_BYTES:
                raise errors.PolicyLengthExceeded("The final policy size is bigger than the limit.")
            record.policy_revision = configuration.new_revision()
            tx.put_layer_version(record)
        return {"Statement": orjson.dumps(_statement(record, grant)).decode(), "RevisionId": record.policy_revision}

    def remove_permission(self, ref: LayerRef, version: int, sid: str, revision_id: str | None) -> None:
        with self.deps.store.transaction() as tx:
            record = tx.get_layer_version(ref.account, ref.region, ref.name, version)
            if record is None:
                raise _version_not_found(ref, version)
            if not record.policy:
                raise errors.ResourceNotFound("No policy is associated with the given resource.")
            check_revision(revision_id, record.policy_revision, api="GetLayerPolicy")  # AWS's words
            kept = [g for g in record.policy if g["Sid"] != sid]
            if len(kept) == len(record.policy):
                raise errors.ResourceNotFound(f"Statement {sid} is not found in resource policy.")
            record.policy = kept
            record.policy_revision = configuration.new_revision()
            tx.put_layer_version(record)

    def get_policy(self, ref: LayerRef, version: int) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            record = tx.get_layer_version(ref.account, ref.region, ref.name, version)
        if record is None:
            raise _version_not_found(ref, version)
        if not record.policy:
            raise errors.ResourceNotFound("No policy is associated with the given resource.")
        return {"Policy": _policy(record), "RevisionId": record.policy_revision}
