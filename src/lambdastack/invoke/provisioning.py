"""Keeps provisioned environments in line with the stored provisioned concurrency configurations.

A configuration names a version or an alias (whose primary version is provisioned). The
worker keeps that many environments of the version initialized; this module tells it how
many, whenever a function changes, and answers how many are ready for the API.
"""

from __future__ import annotations

import logging

from lambdastack.invoke.service import InvokeService
from lambdastack.invoke.specs import spec_key
from lambdastack.store.base import Store
from lambdastack.store.records import LATEST, ProvisionedConcurrencyRecord, VersionRecord
from lambdastack.worker.spec import EnvironmentSpec
from lambdastack.worker.worker import Worker

log = logging.getLogger("lambdastack.invoke")

FunctionId = tuple[str, str, str]


class Provisioner:
    def __init__(self, store: Store, service: InvokeService, worker: Worker) -> None:
        self.store = store
        self.service = service
        self.worker = worker
        self._provisioned: dict[FunctionId, dict[str, EnvironmentSpec]] = {}

    def _version(self, config: ProvisionedConcurrencyRecord) -> VersionRecord | None:
        qualifier = config.qualifier
        if not qualifier.isdigit():
            alias = self.store.get_alias(config.account, config.region, config.function_name, qualifier)
            if alias is None or alias.function_version == LATEST:
                return None
            qualifier = alias.function_version
        return self.store.get_version(config.account, config.region, config.function_name, qualifier)

    def reconcile(self, account: str, region: str, name: str) -> None:
        """Tell the worker how many environments each version of the function must keep ready."""
        with self.store.read() as tx:
            configs = tx.list_provisioned(account, region, name)
        desired: dict[str, tuple[EnvironmentSpec, int]] = {}
        for config in configs:
            record = self._version(config)
            if record is None:
                continue
            spec = self.service.spec(record)
            _, count = desired.get(spec.key, (spec, 0))
            desired[spec.key] = (spec, count + config.requested)
        before = self._provisioned.pop((account, region, name), {})
        for key, spec in before.items():
            if key not in desired:
                self.worker.provision(spec, 0)
        for spec, count in desired.values():
            self.worker.provision(spec, count)
        if desired:
            self._provisioned[(account, region, name)] = {key: spec for key, (spec, _) in desired.items()}

    def reconcile_all(self) -> None:
        with self.store.read() as tx:
            configs = tx.list_provisioned()
        for function in {(c.account, c.region, c.function_name) for c in configs}:
            self.reconcile(*function)

    def status(self, account: str, region: str, name: str, qualifier: str, requested: int) -> tuple[int, str | None]:
        """(environments initialized and ready, why provisioning failed if it did) for one configuration."""
        record = self._version(ProvisionedConcurrencyRecord(account, region, name, qualifier, requested, ""))
        if record is None:
            return 0, None
        _, ready, error = self.worker.provisioned_counts(spec_key(record))
        return ready, error

    def ready(self) -> list[tuple[EnvironmentSpec, int]]:
        """Each provisioned version's spec and how many of its environments are initialized now."""
        return [(spec, self.worker.provisioned_counts(key)[1])
                for specs in self._provisioned.values() for key, spec in specs.items()]
