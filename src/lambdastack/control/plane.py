"""All control services over one store, code store and event registry."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lambdastack.control.account import AccountService
from lambdastack.control.aliases import AliasService
from lambdastack.control.code_signing import CodeSigningService
from lambdastack.control.common import Deps
from lambdastack.control.concurrency import ConcurrencyService
from lambdastack.control.functions import FunctionService
from lambdastack.control.layers import LayerService
from lambdastack.control.provisioned import ProvisionedConcurrencyService
from lambdastack.control.tags import TagService
from lambdastack.control.versions import VersionService

log = logging.getLogger("lambdastack.control")


@dataclass
class ControlPlane:
    deps: Deps
    functions: FunctionService
    versions: VersionService
    aliases: AliasService
    tags: TagService
    concurrency: ConcurrencyService
    account: AccountService
    layers: LayerService
    provisioned: ProvisionedConcurrencyService
    code_signing: CodeSigningService | None = None

    @classmethod
    def over(cls, deps: Deps) -> ControlPlane:
        return cls(
            deps=deps,
            functions=FunctionService(deps),
            versions=VersionService(deps),
            aliases=AliasService(deps),
            tags=TagService(deps),
            concurrency=ConcurrencyService(deps),
            account=AccountService(deps),
            layers=LayerService(deps),
            provisioned=ProvisionedConcurrencyService(deps),
            code_signing=CodeSigningService(deps, deps.code_signing) if deps.code_signing is not None else None,
        )

    def start(self) -> None:
        """Bring the schema up to date and remove code that no version references.

        Code written just before a crash, whose function was never committed, goes here.
        """
        self.deps.store.migrate()
        removed = self.deps.code.collect(self.deps.store.referenced_code())
        if removed:
            log.info("removed %d unreferenced code package(s)", len(removed))

    def stop(self) -> None:
        if self.deps.code_signing is not None:
            self.deps.code_signing.close()
        self.deps.store.close()
