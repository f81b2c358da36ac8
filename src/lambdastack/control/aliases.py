"""Aliases: named pointers to a version, optionally splitting traffic with a second one."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.control import configuration, pagination
from lambdastack.control.common import Deps, check_revision, function_not_found, require_function
from lambdastack.control.names import FunctionRef, function_arn, is_version_number
from lambdastack.store.base import Transaction
from lambdastack.store.records import LATEST, AliasRecord


def render(alias: AliasRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AliasArn": function_arn(alias.account, alias.region, alias.function_name, alias.name),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": dict(alias.weights)}
    return out


def _alias_not_found(ref: FunctionRef, name: str) -> errors.LambdaError:
    return errors.ResourceNotFound(f"Cannot find alias arn: {function_arn(ref.account, ref.region, ref.name, name)}")


def _check_target(tx: Transaction, ref: FunctionRef, primary: str, weights: dict[str, float]) -> None:
    if primary != LATEST and not is_version_number(primary):
        raise errors.InvalidParameterValue(f"Invalid function version: {primary}")
    if tx.get_version(ref.account, ref.region, ref.name, primary) is None:
        raise function_not_found(ref, primary)
    if not weights:
        return
    if primary == LATEST:
        raise errors.InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version")
    for version, weight in weights.items():
        if not is_version_number(version):
            raise errors.InvalidParameterValue(f"Invalid function version in AdditionalVersionWeights: {version}")
        if version == primary:
            raise errors.InvalidParameterValue(
                f"Invalid function version {version}. Function version {version} is already included in "
                "routing configuration."
            )
        if not 0.0 <= weight <= 1.0:
            raise errors.InvalidParameterValue(f"Invalid weight {weight}: weights must be between 0.0 and 1.0.")
        if tx.get_version(ref.account, ref.region, ref.name, version) is None:
            raise function_not_found(ref, version)


def _check_weight_count(weights: dict[str, float]) -> None:
    """Checked before anything else, as AWS does."""
    if len(weights) > 1:
        raise errors.InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1")


def _weights(routing: dict[str, Any] | None) -> dict[str, float]:
    return {k: float(v) for k, v in ((routing or {}).get("AdditionalVersionWeights") or {}).items()}


class AliasService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def create(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        weights = _weights(params.get("RoutingConfig"))
        _check_weight_count(weights)
        with self.deps.store.transaction() as tx:
            if tx.get_function(ref.account, ref.region, ref.name) is None:
                raise function_not_found(ref, params["FunctionVersion"])  # AWS names the version asked for
            if tx.get_alias(ref.account, ref.region, ref.name, name) is not None:
                raise errors.ResourceConflict(
                    f"Alias already exists: {function_arn(ref.account, ref.region, ref.name, name)}"
                )
            _check_target(tx, ref, params["FunctionVersion"], weights)
            alias = AliasRecord(
                ref.account,
                ref.region,
                ref.name,
                name,
                params["FunctionVersion"],
                params.get("Description", ""),
                weights,
                configuration.new_revision(),
            )
            tx.put_alias(alias)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return render(alias)

    def get(self, ref: FunctionRef, name: str) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            require_function(tx, ref)
            alias = tx.get_alias(ref.account, ref.region, ref.name, name)
        if alias is None:
            raise _alias_not_found(ref, name)
        return render(alias)

    def update(self, ref: FunctionRef, name: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.deps.store.transaction() as tx:
            require_function(tx, ref)
            alias = tx.get_alias(ref.account, ref.region, ref.name, name)
            if alias is None:  # UpdateAlias has words of its own
                raise errors.ResourceNotFound(f"Alias not found: {ref.arn}:{name}")
            check_revision(params.get("RevisionId"), alias.revision_id, api="GetAlias")
            if "FunctionVersion" in params:
                alias.function_version = params["FunctionVersion"]
            if "Description" in params:
                alias.description = params["Description"]
            if "RoutingConfig" in params:
                alias.weights = _weights(params["RoutingConfig"])
                _check_weight_count(alias.weights)
            _check_target(tx, ref, alias.function_version, alias.weights)
            alias.revision_id = configuration.new_revision()
            tx.put_alias(alias)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return render(alias)

    def delete(self, ref: FunctionRef, name: str) -> None:
        with self.deps.store.transaction() as tx:
            require_function(tx, ref)
            if tx.get_alias(ref.account, ref.region, ref.name, name) is None:
                return  # as on AWS: deleting an alias that is not there succeeds (the function must exist)
            tx.delete_alias(ref.account, ref.region, ref.name, name)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)

    def list(
        self, ref: FunctionRef, *, version: str | None, marker: str | None, max_items: int | None
    ) -> dict[str, Any]:
        after = pagination.decode(marker, pagination.is_str)
        size = pagination.page_size(max_items)
        with self.deps.store.read() as tx:
            require_function(tx, ref)
            aliases = tx.list_aliases(ref.account, ref.region, ref.name, after=after)
        if version is not None:
            aliases = [a for a in aliases if a.function_version == version or version in a.weights]
        page = aliases[:size]
        out: dict[str, Any] = {"Aliases": [render(a) for a in page]}
        if len(aliases) > size:
            out["NextMarker"] = pagination.encode(page[-1].name)
        return out
