"""Functions: create, read, list, update code and configuration, delete."""

from __future__ import annotations

from typing import Any

from lambdastack import errors
from lambdastack.control import configuration, images, packages, pagination, states
from lambdastack.control.code import CodeRef
from lambdastack.control.code_signing import CodeSigningService
from lambdastack.control.common import (
    Deps,
    check_revision,
    function_not_found,
    require_function,
    require_latest,
    resolve,
)
from lambdastack.control.layers import lookup_in
from lambdastack.control.names import FunctionRef, could_be_alias, is_version_number
from lambdastack.control.packages import PackageRequest
from lambdastack.control.tags import check_tags
from lambdastack.control.versions import publish_in
from lambdastack.store.code_signing import CodeSigningConfigRecord
from lambdastack.store.records import LATEST, FunctionRecord, VersionRecord

Config = dict[str, Any]


def _package_from(code: dict[str, Any], action: str = "creating") -> PackageRequest:
    """The zip package a request names (inline or in S3), refusing members of image functions."""
    if code.get("ImageUri"):
        if not code.get("ZipFile") and not packages.has_s3(code) and action == "creating":
            raise errors.InvalidParameterValue(
                "Please provide a source for function code. (A container image needs PackageType Image.)"
            )
        raise errors.InvalidParameterValue(
            f"Please don't provide ImageUri when {action} a function with packageType Zip."
        )
    return packages.requested(code)


class FunctionService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _signing(self) -> CodeSigningService | None:
        store = self.deps.code_signing
        return CodeSigningService(self.deps, store) if store is not None else None

    def _signing_requested(self, ref: FunctionRef, params: dict[str, Any]) -> CodeSigningConfigRecord | None:
        arn = params.get("CodeSigningConfigArn")
        signing = self._signing()
        if not arn or signing is None:
            return None
        return signing.requested(arn, ref.account, ref.region)

    def _signing_of(self, ref: FunctionRef) -> CodeSigningConfigRecord | None:
        signing = self._signing()
        return signing.of_function(ref) if signing is not None else None

    # -- create ------------------------------------------------------------------------

    def create(self, ref: FunctionRef, params: dict[str, Any]) -> Config:
        if ref.qualifier is not None:
            raise errors.InvalidParameterValue(
                f"Function names cannot carry a qualifier when a function is created: {ref.name}:{ref.qualifier}"
            )
        tags = dict(params.get("Tags") or {})
        check_tags(tags)
        image_uri: str | None = None
        request = PackageRequest()
        if (params.get("PackageType") or "Zip") == "Image":
            image_uri = images.requested_uri(params.get("Code") or {}, "creating")
        else:
            request = _package_from(params.get("Code") or {})
        signing = self._signing_requested(ref, params)
        if image_uri is None:
            CodeSigningService.check_unsigned(signing, ref)
        with self.deps.store.read() as tx:
            # Every rule on the configuration is checked before any code is stored.
            configuration.new_config(
                ref.account, ref.region, ref.name, params, CodeRef("", "", 0, 0), layers=lookup_in(tx, ref),
                file_systems=self.deps.file_systems,
            )
            if tx.get_function(ref.account, ref.region, ref.name) is not None:
                raise errors.ResourceConflict(f"Function already exist: {ref.name}")
        if image_uri is not None:
            images.require_existing(self.deps.image_exists, image_uri)
        pull_id = ""
        if image_uri is not None:
            code, pull_id = images.pending_code(image_uri)
        else:
            package = packages.read(request, self.deps.s3_code, ref.region)
            code = self.deps.code.put_zip(package.data, package.max_zipped)
        try:
            with self.deps.store.transaction() as tx:
                if tx.get_function(ref.account, ref.region, ref.name) is not None:
                    raise errors.ResourceConflict(f"Function already exist: {ref.name}")
                config = configuration.new_config(
                    ref.account, ref.region, ref.name, params, code, layers=lookup_in(tx, ref),
                    file_systems=self.deps.file_systems,
                )
                if image_uri is not None:
                    config = images.with_image(config, image_uri, pull_id, code)
                accepted = states.creating(configuration.touched(config))
                fn = FunctionRecord(ref.account, ref.region, ref.name, created=accepted["LastModified"], tags=tags)
                latest = VersionRecord(
                    ref.account,
                    ref.region,
                    ref.name,
                    LATEST,
                    self.deps.states.stored(accepted),
                    code.sha256_hex,
                )
                tx.put_function(fn)
                tx.put_version(latest)
                if params.get("Publish"):
                    version = publish_in(tx, self.deps, fn, latest, None)
                    accepted = configuration.render(states.creating(version.config), version.version)
        except BaseException:
            self.deps.release_code(code.sha256_hex)
            raise
        if signing is not None and self.deps.code_signing is not None:
            self.deps.code_signing.attach(ref.account, ref.region, ref.name, signing.config_id)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return states.as_created(accepted)

    # -- read --------------------------------------------------------------------------

    def get(self, ref: FunctionRef, base_url: str) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            fn = tx.get_function(ref.account, ref.region, ref.name)
            if fn is None:
                raise function_not_found(ref, ref.qualifier)  # GetFunction names the qualifier it was given
            record, _ = resolve(tx, ref)
        out: dict[str, Any] = {
            "Configuration": configuration.render(record.config, ref.qualifier),
            "Code": images.code_location(record.config) if images.is_image(record.config) else {
                "RepositoryType": "S3",
                "Location": self.deps.signer.url(base_url, record.code_sha256_hex),
            },
        }
        if fn.tags:
            out["Tags"] = dict(fn.tags)
        if fn.reserved_concurrency is not None:
            out["Concurrency"] = {"ReservedConcurrentExecutions": fn.reserved_concurrency}
        return out

    def get_configuration(self, ref: FunctionRef) -> Config:
        with self.deps.store.read() as tx:
            record, _ = resolve(tx, ref)
        return configuration.render(record.config, ref.qualifier)

    def list(
        self,
        account: str,
        region: str,
        *,
        marker: str | None,
        max_items: int | None,
        all_versions: bool,
        master_region: str | None = None,
    ) -> dict[str, Any]:
        if master_region is not None:
            # Only Lambda@Edge replicas are listed by master region, and there are none here.
            if not all_versions:
                raise errors.InvalidParameterValue("MasterRegion requires FunctionVersion=ALL.")
            return {"Functions": []}
        after = pagination.decode(
            marker, lambda key: isinstance(key, list) and len(key) == 2
            and isinstance(key[0], str) and isinstance(key[1], int),
        )
        size = pagination.page_size(max_items)
        with self.deps.store.read() as tx:
            rows = tx.list_functions(
                account,
                region,
                all_versions=all_versions,
                after=tuple(after) if after else None,
                limit=size + 1,
            )
        page = rows[:size]
        out: dict[str, Any] = {
            "Functions": [configuration.render_listed(r.config, r.version if all_versions else None) for r in page]
        }
        if len(rows) > size:
            out["NextMarker"] = pagination.encode([page[-1].function_name, page[-1].number])
        return out

    # -- update ------------------------------------------------------------------------

    def update_code(self, ref: FunctionRef, params: dict[str, Any]) -> Config:
        if params.get("PublishTo"):
            raise errors.InvalidParameterValue("Publishing to LATEST_PUBLISHED is not supported by lambdastack.")
        with self.deps.store.read() as tx:
            latest = require_latest(tx, ref)
        if images.is_image(latest.config):
            return self._update_image(ref, params, images.requested_uri(params, "updating"))
        request = _package_from(params, "updating")
        check_revision(params.get("RevisionId"), latest.config["RevisionId"])
        states.ensure_not_updating(latest.config, ref.arn)
        CodeSigningService.check_unsigned(self._signing_of(ref), ref)
        package = packages.read(request, self.deps.s3_code, ref.region)
        if params.get("DryRun"):
            checked = self.deps.code.check_zip(package.data, package.max_zipped)
            preview = configuration.with_code(latest.config, checked, params.get("Architectures"))
            return configuration.render(preview, None)
        code = self.deps.code.put_zip(package.data, package.max_zipped)
        try:
            with self.deps.store.transaction() as tx:
                fn = require_function(tx, ref)
                latest = require_latest(tx, ref)
                check_revision(params.get("RevisionId"), latest.config["RevisionId"])
                states.ensure_not_updating(latest.config, ref.arn)
                old_sha = latest.code_sha256_hex
                changed = configuration.with_code(latest.config, code, params.get("Architectures"))
                accepted = states.updating(configuration.touched(changed))
                latest.config = self.deps.states.stored(accepted)
                latest.code_sha256_hex = code.sha256_hex
                tx.put_version(latest)
                if params.get("Publish"):
                    version = publish_in(tx, self.deps, fn, latest, None)
                    accepted = configuration.render(states.updating(version.config), version.version)
        except BaseException:
            self.deps.release_code(code.sha256_hex)
            raise
        if old_sha != code.sha256_hex:
            self.deps.release_code(old_sha)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return accepted

    def _update_image(self, ref: FunctionRef, params: dict[str, Any], uri: str) -> Config:
        """A new image for an image function: pulled after the answer, as on Lambda.

        The function keeps running (and referencing) the image it has until the new one
        is ready.
        """
        images.require_existing(self.deps.image_exists, uri)
        code, pull_id = images.pending_code(uri)
        with self.deps.store.transaction() as tx:
            fn = require_function(tx, ref)
            latest = require_latest(tx, ref)
            check_revision(params.get("RevisionId"), latest.config["RevisionId"])
            states.ensure_not_updating(latest.config, ref.arn)
            changed = images.with_image(latest.config, uri, pull_id, code)
            if params.get("Architectures"):
                changed["Architectures"] = list(params["Architectures"])
            if params.get("DryRun"):
                return configuration.render(changed, None)
            accepted = states.updating(configuration.touched(changed))
            latest.config = self.deps.states.stored(accepted)
            tx.put_version(latest)
            if params.get("Publish"):
                version = publish_in(tx, self.deps, fn, latest, None)
                accepted = configuration.render(states.updating(version.config), version.version)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return accepted

    def update_configuration(self, ref: FunctionRef, params: dict[str, Any]) -> Config:
        if "Layers" in params:
            with self.deps.store.read() as tx:
                current = {layer["Arn"] for layer in require_latest(tx, ref).config.get("Layers") or ()}
            if set(params["Layers"] or ()) - current:
                CodeSigningService.check_unsigned(self._signing_of(ref), ref, "a layer")
        with self.deps.store.transaction() as tx:
            latest = require_latest(tx, ref)
            check_revision(params.get("RevisionId"), latest.config["RevisionId"])
            states.ensure_not_updating(latest.config, ref.arn)
            changed = configuration.apply_changes(latest.config, params, layers=lookup_in(tx, ref),
                                                  file_systems=self.deps.file_systems)
            detached = configuration.layer_shas(latest.config) - configuration.layer_shas(changed)
            accepted = states.updating(configuration.touched(changed))
            latest.config = self.deps.states.stored(accepted)
            tx.put_version(latest)
        for sha in detached:
            self.deps.release_code(sha)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
        return accepted

    # -- delete ------------------------------------------------------------------------

    def delete(self, ref: FunctionRef) -> None:
        if ref.qualifier is None:
            self._delete_function(ref)
        elif ref.qualifier == LATEST:
            raise errors.InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.")
        elif could_be_alias(ref.qualifier):
            # AWS's words, and before it looks the function up.
            raise errors.InvalidParameterValue("Deletion of aliases is not currently supported.")
        elif not is_version_number(ref.qualifier):
            # A qualifier no version or alias could have ("$latest"): nothing to delete, once the
            # function is found.
            with self.deps.store.transaction() as tx:
                require_function(tx, ref)
        else:
            self._delete_version(ref, ref.qualifier)

    def _delete_function(self, ref: FunctionRef) -> None:
        with self.deps.store.transaction() as tx:
            require_function(tx, ref)
            shas: set[str] = set()
            for v in tx.list_versions(ref.account, ref.region, ref.name):
                shas |= {v.code_sha256_hex, *configuration.layer_shas(v.config)}
            tx.delete_function(ref.account, ref.region, ref.name)
        for sha in shas:
            self.deps.release_code(sha)
        self.deps.events.function_deleted(ref.account, ref.region, ref.name)

    def _delete_version(self, ref: FunctionRef, version: str) -> None:
        with self.deps.store.transaction() as tx:
            require_function(tx, ref)
            record = tx.get_version(ref.account, ref.region, ref.name, version)
            if record is None:
                return  # as on AWS: deleting a version that is not there succeeds (the function must exist)
            using = [
                a.name
                for a in tx.list_aliases(ref.account, ref.region, ref.name)
                if a.function_version == version or version in a.weights
            ]
            if using:
                raise errors.ResourceConflict(
                    f"Unable to delete version because the following aliases reference it: [{', '.join(using)}]"
                )
            tx.delete_version(ref.account, ref.region, ref.name, version)
        for sha in {record.code_sha256_hex, *configuration.layer_shas(record.config)}:
            self.deps.release_code(sha)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)
