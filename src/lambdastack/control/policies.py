"""Functions' resource-based policies: AddPermission, RemovePermission, GetPolicy.

Each qualifier (the function itself, a version, an alias) has a policy of its own, as on
Lambda. The statements are kept as GetPolicy shows them; `allows` reads them back where
they are enforced (Function URLs).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

import orjson

from lambdastack import errors
from lambdastack.control import configuration, policy_documents
from lambdastack.control.common import (
    Deps,
    check_revision,
    function_not_found,
    require_qualifier,
)
from lambdastack.control.names import FunctionRef, function_arn, is_version
from lambdastack.store.function_policies import PolicyRecord, PolicyStore, TargetGone
from lambdastack.store.records import LATEST


def statement(ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
    """The statement AddPermission `params` make, as Lambda writes it."""
    out: dict[str, Any] = {
        "Sid": params["StatementId"],
        "Effect": "Allow",
        "Principal": policy_documents.principal(params["Principal"]),
        "Action": params["Action"],
        "Resource": function_arn(ref.account, ref.region, ref.name, ref.qualifier),
    }
    equals: dict[str, str] = {}
    if params.get("SourceAccount"):
        equals["AWS:SourceAccount"] = params["SourceAccount"]
    if params.get("PrincipalOrgID"):
        equals["aws:PrincipalOrgID"] = params["PrincipalOrgID"]
    if params.get("EventSourceToken"):
        equals["lambda:EventSourceToken"] = params["EventSourceToken"]
    if params.get("FunctionUrlAuthType"):
        equals["lambda:FunctionUrlAuthType"] = params["FunctionUrlAuthType"]
    condition: dict[str, Any] = {}
    if equals:
        condition["StringEquals"] = equals
    if params.get("SourceArn"):
        condition["ArnLike"] = {"AWS:SourceArn": params["SourceArn"]}
    if params.get("InvokedViaFunctionUrl"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        out["Condition"] = condition
    return out


def allows(statements: list[dict[str, Any]], action: str, *, public: bool, conditions: dict[str, str]) -> bool:
    """Whether a statement allows `action` to anyone (`public`: Principal "*"), under exactly
    the conditions a request meets (`conditions`, e.g. lambda:FunctionUrlAuthType). A statement
    with a condition the request cannot meet (a source ARN, an account) allows nothing here."""
    for s in statements:
        if s.get("Effect") != "Allow" or s.get("Action") not in (action, "lambda:*", "*"):
            continue
        if public and s.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        condition = s.get("Condition") or {}
        if set(condition) - {"StringEquals", "Bool"}:
            continue
        required = {**condition.get("StringEquals", {}), **condition.get("Bool", {})}
        if all(conditions.get(key) == value for key, value in required.items()):
            return True
    return False


def allows_service(statements: list[dict[str, Any]], action: str, *, service: str, source_arn: str,
                   source_account: str) -> bool:
    """Whether a statement allows `action` to an AWS service (`apigateway.amazonaws.com`) acting
    for `source_arn` in `source_account`: the conditions AWS:SourceArn (ArnLike or ArnEquals)
    and AWS:SourceAccount are checked; a statement with any other condition allows nothing here."""
    for s in statements:
        if s.get("Effect") != "Allow" or s.get("Action") not in (action, "lambda:*", "*"):
            continue
        if s.get("Principal") not in ("*", {"AWS": "*"}, {"Service": service}):
            continue
        condition = s.get("Condition") or {}
        if set(condition) - {"StringEquals", "ArnLike", "ArnEquals"}:
            continue
        if set(condition.get("StringEquals", {})) - {"AWS:SourceAccount"}:
            continue
        wanted_account = condition.get("StringEquals", {}).get("AWS:SourceAccount")
        if wanted_account is not None and wanted_account != source_account:
            continue
        pattern = condition.get("ArnLike", {}).get("AWS:SourceArn") or condition.get("ArnEquals", {}).get(
            "AWS:SourceArn")
        if pattern is not None and not arn_like(pattern, source_arn):
            continue
        return True
    return False


def arn_like(pattern: str, arn: str) -> bool:
    """IAM's ArnLike: `*` any run of characters, `?` any one."""
    return _arn_pattern(pattern).fullmatch(arn) is not None


@functools.lru_cache(maxsize=1024)
def _arn_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


class PolicyService:
    def __init__(self, deps: Deps, policies: PolicyStore) -> None:
        self.deps = deps
        self.policies = policies
        # What `statements` read, by function, until the function, its aliases or its policy change:
        # it is read on every request to a URL or an HTTP API.
        self._cache: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        deps.events.on_function_changed(self._forget)
        deps.events.on_function_deleted(self._forget)

    def add_permission(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        qualifier, alias = self._target(ref)
        if params.get("PrincipalOrgID") and params["Principal"] != "*":
            raise errors.InvalidParameterValue("PrincipalOrgID can only be specified together with the Principal '*'.")
        record = self._record(ref, qualifier)
        check_revision(params.get("RevisionId"), record.revision_id, api="GetPolicy")
        sid = params["StatementId"]
        if any(s["Sid"] == sid for s in record.statements):
            raise errors.ResourceConflict(policy_documents.DUPLICATE_SID.format(sid=sid))
        added = statement(ref, params)
        record.statements = [*record.statements, added]
        if policy_documents.too_long(record.statements):
            raise errors.PolicyLengthExceeded("The final policy size is bigger than the limit.")
        self._save(ref, record, alias)
        return {"Statement": orjson.dumps(added).decode()}

    def remove_permission(self, ref: FunctionRef, sid: str, revision_id: str | None) -> None:
        qualifier, alias = self._target(ref, missing_function=lambda: errors.ResourceNotFound(
            f"No policy found for: {function_arn(ref.account, ref.region, ref.name, ref.qualifier)}"))
        record = self.policies.get(ref.account, ref.region, ref.name, qualifier)
        if record is None:
            raise errors.ResourceNotFound("No policy is associated with the given resource.")
        check_revision(revision_id, record.revision_id, api="GetPolicy")
        kept = [s for s in record.statements if s["Sid"] != sid]
        if len(kept) == len(record.statements):
            raise errors.ResourceNotFound(f"Statement {sid} is not found in resource policy.")
        record.statements = kept
        self._save(ref, record, alias)

    def get_policy(self, ref: FunctionRef) -> dict[str, Any]:
        try:
            qualifier, _ = self._target(ref)
        except errors.LambdaError as e:
            if e.code == "ResourceNotFoundException":  # AWS: one answer for every missing thing here
                raise errors.ResourceNotFound("The resource you requested does not exist.")
            raise
        record = self.policies.get(ref.account, ref.region, ref.name, qualifier)
        if record is None:
            raise errors.ResourceNotFound("The resource you requested does not exist.")
        return {"Policy": policy_documents.document(record.statements), "RevisionId": record.revision_id}

    def statements(self, account: str, region: str, name: str, qualifier: str) -> list[dict[str, Any]]:
        """The statements of a function's (qualifier "") or a qualifier's policy."""
        key = (account, region, name)
        cached = self._cache.get(key)
        if cached is not None and qualifier in cached:
            return cached[qualifier]
        with self._lock:
            generation = self._generation
        record = self.policies.get(account, region, name, qualifier)
        statements = record.statements if record is not None else []
        with self._lock:
            if generation == self._generation:  # nothing changed while it was read
                self._cache.setdefault(key, {})[qualifier] = statements
        return statements

    def _forget(self, account: str, region: str, name: str) -> None:
        with self._lock:
            self._generation += 1
            self._cache.pop((account, region, name), None)

    # ------------------------------------------------------------------ helpers

    def _target(self, ref: FunctionRef,
                missing_function: Callable[[], errors.LambdaError] | None = None) -> tuple[str, str | None]:
        """The policy's qualifier ("" for the function itself) and its alias, if it is one; 404s
        in AWS's words (`Cannot find alias arn: ...` for an alias)."""
        with self.deps.store.read() as tx:
            if tx.get_function(ref.account, ref.region, ref.name) is None:
                raise missing_function() if missing_function is not None else function_not_found(ref)
            if ref.qualifier and ref.qualifier != LATEST:
                require_qualifier(tx, ref, ref.qualifier)
        qualifier = ref.qualifier or ""
        if qualifier == LATEST:
            raise errors.InvalidParameterValue("We currently do not support adding policies for $LATEST.")
        return qualifier, (qualifier if qualifier and not is_version(qualifier) else None)

    def _record(self, ref: FunctionRef, qualifier: str) -> PolicyRecord:
        record = self.policies.get(ref.account, ref.region, ref.name, qualifier)
        return record or PolicyRecord(ref.account, ref.region, ref.name, qualifier)

    def _save(self, ref: FunctionRef, record: PolicyRecord, alias: str | None) -> None:
        record.revision_id = configuration.new_revision()
        try:
            self.policies.put(record, alias)
        except TargetGone:
            raise function_not_found(ref, ref.qualifier)
        finally:
            self._forget(ref.account, ref.region, ref.name)
