"""What the usage ledger files an invocation under: the version and what its price depends on."""

from __future__ import annotations

from lambdastack.observe.usage.ledger import UsageKey
from lambdastack.worker.spec import EnvironmentSpec


def usage_key(spec: EnvironmentSpec) -> UsageKey:
    return (spec.account, spec.region, spec.function_name, spec.version, spec.architecture, spec.memory_mb,
            spec.ephemeral_mb)
