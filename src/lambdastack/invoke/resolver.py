"""Which version an invocation runs: `$LATEST`, a version number, or an alias (with weights).

Lookups are cached per (account, region, function) and dropped when control announces a
change, so the hot path does not touch the database.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lambdastack import errors
from lambdastack.control.names import function_arn, is_version, parse_function_name
from lambdastack.store.base import Store
from lambdastack.store.records import LATEST, AliasRecord, VersionRecord


@dataclass(frozen=True)
class Target:
    version: VersionRecord
    invoked_arn: str  # the ARN as the caller named it (with its qualifier, if any)
    executed_version: str  # "$LATEST" or the version number that runs


class Resolver:
    def __init__(self, store: Store, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self._versions: dict[tuple[str, str, str, str], VersionRecord | None] = {}
        self._aliases: dict[tuple[str, str, str, str], AliasRecord | None] = {}

    def invalidate(self, account: str, region: str, name: str) -> None:
        for cache in (self._versions, self._aliases):
            for key in [k for k in cache if k[:3] == (account, region, name)]:
                del cache[key]

    def _version(self, account: str, region: str, name: str, version: str) -> VersionRecord | None:
        key = (account, region, name, version)
        try:
            return self._versions[key]
        except KeyError:
            record = self._versions[key] = self.store.get_version(account, region, name, version)
            return record

    def _alias(self, account: str, region: str, name: str, alias: str) -> AliasRecord | None:
        key = (account, region, name, alias)
        try:
            return self._aliases[key]
        except KeyError:
            record = self._aliases[key] = self.store.get_alias(account, region, name, alias)
            return record

    def resolve(self, function_name: str, qualifier: str | None, account: str, region: str) -> Target:
        ref = parse_function_name(function_name, account, region, qualifier=qualifier)
        q = ref.qualifier
        if q is None or is_version(q):
            version = q or LATEST
            record = self._version(account, region, ref.name, version)
            if record is None:
                # Invoke names $LATEST when no qualifier was given, as AWS does.
                raise errors.ResourceNotFound(f"Function not found: {function_arn(account, region, ref.name, version)}")
            return Target(record, function_arn(account, region, ref.name, q), version)
        alias = self._alias(account, region, ref.name, q)
        if alias is None:
            raise errors.ResourceNotFound(f"Function not found: {function_arn(account, region, ref.name, q)}")
        version = self.pick(alias)
        record = self._version(account, region, ref.name, version)
        if record is None:
            raise errors.ResourceNotFound(f"Function not found: {function_arn(account, region, ref.name, version)}")
        return Target(record, function_arn(account, region, ref.name, q), version)

    def pick(self, alias: AliasRecord) -> str:
        """The alias's primary version, or one of its weighted additional versions."""
        roll = self.rng.random()
        for version, weight in alias.weights.items():
            if roll < weight:
                return version
            roll -= weight
        return alias.function_version
