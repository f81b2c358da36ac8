"""Code signing configurations: their API, and the check every code deployment goes through.

A configuration names the AWS Signer profiles whose signatures are trusted and what to do
with code that is not signed by one of them (`UntrustedArtifactOnDeployment`: `Warn`, the
default, or `Enforce`). lambdastack cannot check AWS Signer signatures (their keys live in
AWS), so no package is ever signed as far as it knows: under `Enforce`, every new package
of a function (CreateFunction, UpdateFunctionCode, a layer added) is refused with Lambda's
CodeVerificationFailedException; under `Warn`, it is deployed and the warning is logged.
Code a function already runs keeps running when a configuration is attached, as on Lambda.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from lambdastack import errors
from lambdastack.control import configuration, pagination
from lambdastack.control.common import Deps, require_function
from lambdastack.control.names import FunctionRef, function_arn
from lambdastack.control.tags import check_tags
from lambdastack.store.code_signing import CodeSigningConfigRecord, FunctionGone, SqliteCodeSigningStore

log = logging.getLogger("lambdastack.control.code_signing")

_ARN = re.compile(r"arn:(aws[a-zA-Z-]*)?:lambda:([a-z0-9-]+):(\d{12}):code-signing-config:(csc-[a-z0-9]{17})")


def config_arn(account: str, region: str, config_id: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:code-signing-config:{config_id}"


def render(record: CodeSigningConfigRecord) -> dict[str, Any]:
    """A CodeSigningConfig."""
    return {
        "CodeSigningConfigId": record.config_id,
        "CodeSigningConfigArn": config_arn(record.account, record.region, record.config_id),
        "Description": record.description,
        "AllowedPublishers": {"SigningProfileVersionArns": list(record.publishers)},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": record.policy},
        "LastModified": record.last_modified,
    }


def _not_found(arn: str) -> errors.LambdaError:
    return errors.ResourceNotFound(f"The Lambda code signing configuration {arn} can not be found.")


def _config_not_found(arn: str) -> errors.LambdaError:
    return errors.CodeSigningConfigNotFound(
        "The code signing configuration cannot be found. Check that the provided configuration is not deleted: "
        f"{arn}."
    )


def _policy(policies: dict[str, Any] | None, current: str = "Warn") -> str:
    return str((policies or {}).get("UntrustedArtifactOnDeployment") or current)


def _publishers(allowed: dict[str, Any]) -> list[str]:
    arns = list(allowed.get("SigningProfileVersionArns") or [])
    if not arns:
        raise errors.InvalidParameterValue("AllowedPublishers must name at least one signing profile version ARN.")
    return arns


def unverified(function: str) -> errors.LambdaError:
    """What Lambda answers under Enforce for code whose signature it cannot accept."""
    return errors.CodeVerificationFailed(
        "Lambda cannot deploy the function. The function or layer might be signed using a signature that the "
        f"client is not configured to accept. Check the provided signature for {function}."
    )


class CodeSigningService:
    def __init__(self, deps: Deps, store: SqliteCodeSigningStore) -> None:
        self.deps = deps
        self.store = store

    # -- configurations -----------------------------------------------------------------

    def _find(self, arn: str, account: str, region: str) -> CodeSigningConfigRecord | None:
        m = _ARN.fullmatch(arn)
        if m is None or (m.group(2), m.group(3)) != (region, account):
            return None
        return self.store.get(account, region, m.group(4))

    def _require(self, arn: str, account: str, region: str) -> CodeSigningConfigRecord:
        record = self._find(arn, account, region)
        if record is None:
            raise _not_found(arn)
        return record

    def create(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        record = CodeSigningConfigRecord(
            account=account,
            region=region,
            config_id="csc-" + uuid.uuid4().hex[:17],
            publishers=_publishers(params.get("AllowedPublishers") or {}),
            policy=_policy(params.get("CodeSigningPolicies")),
            last_modified=configuration.timestamp(),
            description=params.get("Description") or "",
            tags=dict(params.get("Tags") or {}),
        )
        check_tags(record.tags)
        self.store.put(record)
        return {"CodeSigningConfig": render(record)}

    def get(self, arn: str, account: str, region: str) -> dict[str, Any]:
        return {"CodeSigningConfig": render(self._require(arn, account, region))}

    def update(self, arn: str, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        record = self._require(arn, account, region)
        changed = False
        if "Description" in params:
            record.description, changed = params["Description"] or "", True
        if "AllowedPublishers" in params:
            record.publishers, changed = _publishers(params["AllowedPublishers"] or {}), True
        if "CodeSigningPolicies" in params:
            record.policy, changed = _policy(params["CodeSigningPolicies"], record.policy), True
        if changed:
            record.last_modified = configuration.timestamp()
            self.store.put(record)
        return {"CodeSigningConfig": render(record)}

    def delete(self, arn: str, account: str, region: str) -> None:
        record = self._require(arn, account, region)
        using = self.store.functions_using(account, region, record.config_id, None, 10)
        if using:
            raise errors.ResourceConflict(
                f"The code signing configuration {arn} cannot be deleted because it is used by the following "
                f"functions: [{', '.join(function_arn(account, region, name) for name in using)}]"
            )
        self.store.delete(account, region, record.config_id)

    def list_configs(self, account: str, region: str, marker: str | None, max_items: int | None) -> dict[str, Any]:
        after = pagination.decode(marker, pagination.is_str)
        size = pagination.page_size(max_items)
        rows = self.store.list_configs(account, region, after, size + 1)
        out: dict[str, Any] = {"CodeSigningConfigs": [render(r) for r in rows[:size]]}
        if len(rows) > size:
            out["NextMarker"] = pagination.encode(rows[size - 1].config_id)
        return out

    def list_functions(self, arn: str, account: str, region: str, marker: str | None,
                       max_items: int | None) -> dict[str, Any]:
        record = self._require(arn, account, region)
        after = pagination.decode(marker, pagination.is_str)
        size = pagination.page_size(max_items)
        names = self.store.functions_using(account, region, record.config_id, after, size + 1)
        out: dict[str, Any] = {"FunctionArns": [function_arn(account, region, n) for n in names[:size]]}
        if len(names) > size:
            out["NextMarker"] = pagination.encode(names[size - 1])
        return out

    # -- functions ----------------------------------------------------------------------

    def put_function(self, ref: FunctionRef, arn: str) -> dict[str, Any]:
        record = self._find(arn, ref.account, ref.region)
        if record is None:
            raise _config_not_found(arn)  # reported before a missing function, as on AWS
        with self.deps.store.read() as tx:
            require_function(tx, ref)
        try:
            self.store.attach(ref.account, ref.region, ref.name, record.config_id)
        except FunctionGone:
            with self.deps.store.read() as tx:
                require_function(tx, ref)
            raise
        return {"CodeSigningConfigArn": arn, "FunctionName": ref.name}

    def get_function(self, ref: FunctionRef) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            require_function(tx, ref)
        config_id = self.store.function_config(ref.account, ref.region, ref.name)
        if config_id is None:
            return {}
        return {"CodeSigningConfigArn": config_arn(ref.account, ref.region, config_id), "FunctionName": ref.name}

    def delete_function(self, ref: FunctionRef) -> None:
        with self.deps.store.read() as tx:
            require_function(tx, ref)
        self.store.detach(ref.account, ref.region, ref.name)

    # -- deployments --------------------------------------------------------------------

    def requested(self, arn: str, account: str, region: str) -> CodeSigningConfigRecord:
        """The configuration CreateFunction names (CodeSigningConfigNotFoundException if none)."""
        record = self._find(arn, account, region)
        if record is None:
            raise _config_not_found(arn)
        return record

    def of_function(self, ref: FunctionRef) -> CodeSigningConfigRecord | None:
        config_id = self.store.function_config(ref.account, ref.region, ref.name)
        return self.store.get(ref.account, ref.region, config_id) if config_id else None

    @staticmethod
    def check_unsigned(record: CodeSigningConfigRecord | None, ref: FunctionRef, what: str = "code") -> None:
        """A deployment of unsigned `what` under `record`: refused under Enforce, logged under Warn."""
        if record is None:
            return
        arn = function_arn(ref.account, ref.region, ref.name)
        if record.policy == "Enforce":
            raise unverified(arn)
        log.warning("%s: deploying %s without a trusted signature (code signing configuration %s, Warn)",
                    arn, what, record.config_id)
