"""The store interface: what control needs from metadata storage, whatever the database.

`SqliteStore` fills it for the embedded deployment; a PostgreSQL store fills it for the
cluster. Read-check-write sequences (RevisionId and CodeSha256 preconditions, version
numbering, the unreserved-concurrency floor) run inside one `transaction()` so that they
are atomic against every other writer.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from lambdastack.store.records import (
    AliasRecord,
    DeploymentRecord,
    FunctionRecord,
    LayerRecord,
    LayerVersionRecord,
    ProvisionedConcurrencyRecord,
    VersionRecord,
)


class Reader(Protocol):
    def get_function(self, account: str, region: str, name: str) -> FunctionRecord | None: ...

    def get_version(self, account: str, region: str, name: str, version: str) -> VersionRecord | None: ...

    def get_alias(self, account: str, region: str, name: str, alias: str) -> AliasRecord | None: ...


class LayerTransaction(Protocol):
    """Layers, their versions and the version policies."""

    def get_layer(self, account: str, region: str, name: str) -> LayerRecord | None: ...

    def put_layer(self, record: LayerRecord) -> None: ...

    def get_layer_version(self, account: str, region: str, name: str, version: int) -> LayerVersionRecord | None: ...

    def list_layer_versions(self, account: str, region: str, name: str | None = None) -> list[LayerVersionRecord]:
        """Versions of one layer (or of every layer), by layer name, newest version first."""
        ...

    def put_layer_version(self, record: LayerVersionRecord) -> None:
        """Insert a version, or replace its policy (the rest of a version never changes)."""
        ...

    def delete_layer_version(self, account: str, region: str, name: str, version: int) -> None: ...


class DeploymentTransaction(Protocol):
    """Safe deployments and their outcomes."""

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None: ...

    def list_deployments(
        self,
        account: str,
        region: str,
        *,
        function_name: str | None = None,
        status: str | None = None,
        before: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[DeploymentRecord]:
        """Newest first; `before` is the (created, id) of the last one of a previous page."""
        ...

    def unfinished_deployments(self) -> list[DeploymentRecord]: ...

    def put_deployment(self, record: DeploymentRecord) -> None:
        """Insert a deployment, or update its status, reason, weight and progress."""
        ...


class ProvisionedTransaction(Protocol):
    """Provisioned concurrency configurations (by function and qualifier)."""

    def get_provisioned(
        self, account: str, region: str, name: str, qualifier: str
    ) -> ProvisionedConcurrencyRecord | None: ...

    def list_provisioned(
        self, account: str | None = None, region: str | None = None, name: str | None = None
    ) -> list[ProvisionedConcurrencyRecord]: ...

    def put_provisioned(self, record: ProvisionedConcurrencyRecord) -> None: ...

    def delete_provisioned(self, account: str, region: str, name: str, qualifier: str) -> None: ...


class Transaction(Reader, LayerTransaction, DeploymentTransaction, ProvisionedTransaction, Protocol):
    """Domain reads and writes that commit together or not at all."""

    def list_functions(
        self, account: str, region: str, *, all_versions: bool, after: tuple[str, int] | None, limit: int
    ) -> list[VersionRecord]:
        """Versions ordered by (function name, version number) and strictly after `after`.

        Only $LATEST of each function unless `all_versions`.
        """
        ...

    def list_versions(
        self, account: str, region: str, name: str, *, after: int | None = None, limit: int | None = None
    ) -> list[VersionRecord]:
        """$LATEST (number 0) first, then published versions ascending."""
        ...

    def list_aliases(
        self,
        account: str,
        region: str,
        name: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[AliasRecord]: ...

    def put_function(self, record: FunctionRecord) -> None:
        """Insert or replace the function-level record (never touches versions or aliases)."""
        ...

    def delete_function(self, account: str, region: str, name: str) -> None:
        """Delete a function with all its versions and aliases."""
        ...

    def put_version(self, record: VersionRecord) -> None: ...

    def delete_version(self, account: str, region: str, name: str, version: str) -> None: ...

    def put_alias(self, record: AliasRecord) -> None: ...

    def delete_alias(self, account: str, region: str, name: str, alias: str) -> None: ...

    def function_count(self, account: str, region: str) -> int: ...

    def total_code_size(self, account: str, region: str) -> int:
        """Sum of CodeSize over every version of every function, as Lambda counts storage."""
        ...

    def reserved_concurrency_total(self, account: str, region: str, *, excluding: str | None = None) -> int: ...

    def code_in_use(self, sha256_hex: str) -> bool:
        """Whether a function version, a layer version or a version's snapshot of a layer uses it."""
        ...


class Store(Reader, Protocol):
    """Metadata storage. The plain read methods are thread-safe and may be called anywhere."""

    def migrate(self) -> None:
        """Bring the schema up to date (idempotent)."""
        ...

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: commits when the block ends, rolls back if it raises."""
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent read-only snapshot (writes inside it are an error)."""
        ...

    def referenced_code(self) -> set[str]:
        """SHA-256 (hex) of every code package some function or layer version still uses."""
        ...

    def pending_versions(self) -> list[VersionRecord]:
        """Every version whose State is Pending, in any account and region."""
        ...

    def close(self) -> None: ...
