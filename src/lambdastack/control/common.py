"""What every control service shares: its collaborators and how a name resolves to a version."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lambdastack import errors
from lambdastack.control.code import CodeStore
from lambdastack.control.codeurls import CodeUrlSigner
from lambdastack.control.events import Events
from lambdastack.control.names import FunctionRef, function_arn, is_version
from lambdastack.control.s3code import S3CodeSource
from lambdastack.control.states import States
from lambdastack.file_systems import FileSystemMapping
from lambdastack.store.base import Reader, Store
from lambdastack.store.code_signing import SqliteCodeSigningStore
from lambdastack.store.records import LATEST, AliasRecord, FunctionRecord, VersionRecord


@dataclass
class Deps:
    store: Store
    code: CodeStore
    events: Events
    states: States
    signer: CodeUrlSigner
    account_concurrency: int = 1000
    # False only when a registry says an image reference names nothing (set where images are pulled).
    image_exists: Callable[[str], bool] | None = None
    # Where code given as S3Bucket/S3Key is read (None: no endpoint, such code is refused).
    s3_code: S3CodeSource | None = None
    # Code signing configurations and the functions that have one.
    code_signing: SqliteCodeSigningStore | None = None
    # EFS access point ARNs mapped to host directories (`serve --file-system`).
    file_systems: dict[str, FileSystemMapping] = field(default_factory=dict)

    def release_code(self, sha256_hex: str) -> None:
        """Remove a code package once no version uses it any more."""
        with self.store.read() as tx:
            in_use = tx.code_in_use(sha256_hex)
        if not in_use:
            self.code.remove(sha256_hex)


def function_not_found(ref: FunctionRef, qualifier: str | None = None) -> errors.LambdaError:
    return errors.ResourceNotFound(f"Function not found: {function_arn(ref.account, ref.region, ref.name, qualifier)}")


_ALIAS_NAME = re.compile(r"[a-zA-Z0-9_-]+")


def alias_not_found(ref: FunctionRef, alias: str) -> errors.LambdaError:
    return errors.ResourceNotFound(f"Cannot find alias arn: {function_arn(ref.account, ref.region, ref.name, alias)}")


def require_qualifier(tx: Reader, ref: FunctionRef, qualifier: str) -> None:
    """A published version or an alias of the function, as AWS checks it (the function's own
    absence shows as the qualifier's): `Function not found: ...:<version>` or `Cannot find alias
    arn: ...:<alias>`."""
    if is_version(qualifier) or not _ALIAS_NAME.fullmatch(qualifier):  # no alias can have that name
        if qualifier == LATEST or tx.get_version(ref.account, ref.region, ref.name, qualifier) is None:
            raise function_not_found(ref, qualifier)
    elif tx.get_alias(ref.account, ref.region, ref.name, qualifier) is None:
        raise alias_not_found(ref, qualifier)


def require_function(tx: Reader, ref: FunctionRef) -> FunctionRecord:
    fn = tx.get_function(ref.account, ref.region, ref.name)
    if fn is None:
        raise function_not_found(ref)
    return fn


def require_latest(tx: Reader, ref: FunctionRef) -> VersionRecord:
    latest = tx.get_version(ref.account, ref.region, ref.name, LATEST)
    if latest is None:
        raise function_not_found(ref)
    return latest


def resolve(tx: Reader, ref: FunctionRef) -> tuple[VersionRecord, AliasRecord | None]:
    """The version a (possibly qualified) name designates, and the alias it went through."""
    qualifier = ref.qualifier or LATEST
    if is_version(qualifier):
        record = tx.get_version(ref.account, ref.region, ref.name, qualifier)
        if record is None:
            raise function_not_found(ref, ref.qualifier)
        return record, None
    alias = tx.get_alias(ref.account, ref.region, ref.name, qualifier)
    if alias is None:
        raise function_not_found(ref, qualifier)
    record = tx.get_version(ref.account, ref.region, ref.name, alias.function_version)
    if record is None:
        raise function_not_found(ref, alias.function_version)
    return record, alias


def check_revision(given: str | None, current: str, api: str = "GetFunction/GetAlias") -> None:
    if given is not None and given != current:
        raise errors.PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. "
            f"Call the {api} API to retrieve the latest Revision Id"
        )
