"""Tags on functions and code signing configurations, addressed by their full ARN as Lambda
addresses them."""

from __future__ import annotations

from lambdastack import errors
from lambdastack.control.common import Deps, require_function
from lambdastack.control.limits import MAX_TAGS
from lambdastack.control.names import FunctionRef, parse_resource_arn
from lambdastack.store.code_signing import CodeSigningConfigRecord


def check_tags(tags: dict[str, str]) -> None:
    for key in tags:
        if key.lower().startswith("aws:"):
            raise errors.InvalidParameterValue(f"Tag keys starting with 'aws:' are reserved: {key}")
    if len(tags) > MAX_TAGS:
        raise errors.InvalidParameterValue(
            "Number of tags exceeds resource tag limit."
        )


class TagService:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _function(self, resource: str, account: str, region: str) -> FunctionRef:
        arn = parse_resource_arn(resource)
        if arn.kind != "function":
            raise errors.ResourceNotFound(f"Resource not found: {resource}")
        if arn.qualifier is not None:
            raise errors.InvalidParameterValue(
                "Tags on function aliases and versions are not supported. Please specify a function ARN.")
        if arn.account != account or arn.region != region:
            raise errors.ResourceNotFound(f"Function not found: {resource}")
        return FunctionRef(account, region, arn.name)

    def _code_signing_config(self, resource: str, account: str, region: str) -> CodeSigningConfigRecord | None:
        """The code signing configuration `resource` names (None: it names no such configuration)."""
        arn = parse_resource_arn(resource)
        if arn.kind != "code-signing-config":
            return None
        store = self.deps.code_signing
        found = store.get(account, region, arn.name) if store and (arn.account, arn.region) == (account, region) \
            else None
        if found is None:
            raise errors.ResourceNotFound(f"The Lambda code signing configuration {resource} can not be found.")
        return found

    def tag(self, resource: str, account: str, region: str, tags: dict[str, str]) -> None:
        if not tags:
            raise errors.InvalidParameterValue("An error occurred and the request cannot be processed.")  # AWS's words
        config = self._code_signing_config(resource, account, region)
        if config is not None and self.deps.code_signing is not None:
            merged = {**config.tags, **tags}
            check_tags(merged)
            config.tags = merged
            self.deps.code_signing.put(config)
            return
        ref = self._function(resource, account, region)
        with self.deps.store.transaction() as tx:
            fn = require_function(tx, ref)
            merged = {**fn.tags, **tags}
            check_tags(merged)
            fn.tags = merged
            tx.put_function(fn)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)

    def untag(self, resource: str, account: str, region: str, keys: list[str]) -> None:
        config = self._code_signing_config(resource, account, region)
        if config is not None and self.deps.code_signing is not None:
            config.tags = {k: v for k, v in config.tags.items() if k not in set(keys)}
            self.deps.code_signing.put(config)
            return
        ref = self._function(resource, account, region)
        with self.deps.store.transaction() as tx:
            fn = require_function(tx, ref)
            fn.tags = {k: v for k, v in fn.tags.items() if k not in set(keys)}
            tx.put_function(fn)
        self.deps.events.function_changed(ref.account, ref.region, ref.name)

    def list(self, resource: str, account: str, region: str) -> dict[str, str]:
        config = self._code_signing_config(resource, account, region)
        if config is not None:
            return dict(config.tags)
        ref = self._function(resource, account, region)
        with self.deps.store.read() as tx:
            return dict(require_function(tx, ref).tags)
