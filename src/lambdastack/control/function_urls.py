"""Function URLs: a dedicated HTTP endpoint for a function, or for one of its aliases.

Lambda's model checks the members' shapes (the qualifier is an alias name: never `$LATEST`
or a version number; the CORS lists' sizes; the enums), and the API layer applies it. This
module checks that the function or alias exists, keeps one URL per target, and names each
URL: `http://<url-id>.lambda-url.<region>.<url host>:<port>/`, served by this same server.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
import threading
from collections.abc import Callable
from typing import Any

from lambdastack import errors
from lambdastack.control import pagination
from lambdastack.control.common import Deps, function_not_found, require_function, resolve
from lambdastack.control.names import FunctionRef, function_arn
from lambdastack.control.url_naming import UrlNaming
from lambdastack.store.function_urls import FunctionUrlRecord, FunctionUrlStore, TargetGone, UrlConflict

URL_ID_ALPHABET = string.ascii_lowercase + string.digits
URL_ID_LENGTH = 32


def render(record: FunctionUrlRecord, naming: UrlNaming, with_modified: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FunctionUrl": naming.url(record.url_id, record.region),
        "FunctionArn": function_arn(record.account, record.region, record.function_name, record.qualifier or None),
        "AuthType": record.auth_type,
        "CreationTime": record.created,
        "InvokeMode": record.invoke_mode,
    }
    if record.cors is not None:
        out["Cors"] = record.cors
    if with_modified:
        out["LastModifiedTime"] = record.modified
    return out


class FunctionUrlService:
    def __init__(self, deps: Deps, urls: FunctionUrlStore, naming: UrlNaming) -> None:
        self.deps = deps
        self.urls = urls
        self.naming = naming
        # What `by_url_id` read (URLs that exist), until the URL or its function changes: it is
        # read on every request to a URL.
        self._by_id: dict[str, FunctionUrlRecord] = {}
        self._generation = 0
        self._lock = threading.Lock()
        deps.events.on_function_changed(self._forget)
        deps.events.on_function_deleted(self._forget)

    def create(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        self._require_target(ref, missing=_no_function)
        now = _now()
        record = FunctionUrlRecord(
            ref.account, ref.region, ref.name, ref.qualifier or "", _new_url_id(), params["AuthType"],
            params.get("InvokeMode") or "BUFFERED", params.get("Cors"), now, now,
        )
        try:
            self.urls.insert(record)
        except UrlConflict:
            arn = function_arn(ref.account, ref.region, ref.name, ref.qualifier)
            raise errors.ResourceConflict(
                f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
                "FunctionUrlConfig exists for this Lambda function"
            )
        except TargetGone:
            raise function_not_found(ref, ref.qualifier)
        created = render(record, self.naming, with_modified=False)
        if "InvokeMode" not in params:
            del created["InvokeMode"]  # AWS names it in its answer only when the request did
        return created

    def get(self, ref: FunctionRef) -> dict[str, Any]:
        return render(self._existing(ref, missing=_no_url), self.naming)

    def update(self, ref: FunctionRef, params: dict[str, Any]) -> dict[str, Any]:
        record = self._existing(ref, missing=_no_function)
        if "AuthType" in params:
            record.auth_type = params["AuthType"]
        if "InvokeMode" in params:
            record.invoke_mode = params["InvokeMode"]
        if "Cors" in params:
            record.cors = params["Cors"]
        record.modified = _now()
        try:
            self.urls.update(record)
        finally:
            self._forget(ref.account, ref.region, ref.name)
        return render(record, self.naming)

    def delete(self, ref: FunctionRef) -> None:
        self._require_target(ref, missing=_no_url)
        try:
            deleted = self.urls.delete(ref.account, ref.region, ref.name, ref.qualifier or "")
        finally:
            self._forget(ref.account, ref.region, ref.name)
        if not deleted:
            raise _no_url()

    def list(self, ref: FunctionRef, marker: str | None, max_items: int | None) -> dict[str, Any]:
        with self.deps.store.read() as tx:
            if tx.get_function(ref.account, ref.region, ref.name) is None:
                raise _no_function()
        page, next_marker = pagination.page_by_qualifier(self.urls.list(ref.account, ref.region, ref.name), marker,
                                                         max_items)
        out: dict[str, Any] = {"FunctionUrlConfigs": [render(r, self.naming) for r in page]}
        if next_marker is not None:
            out["NextMarker"] = next_marker
        return out

    def by_url_id(self, url_id: str) -> FunctionUrlRecord | None:
        """The URL a request's Host names (None: no such URL). Callers must not change it."""
        cached = self._by_id.get(url_id)
        if cached is not None:
            return cached
        with self._lock:
            generation = self._generation
        record = self.urls.by_url_id(url_id)
        if record is not None:
            with self._lock:
                if generation == self._generation:  # nothing changed while it was read
                    self._by_id[url_id] = record
        return record

    def _forget(self, account: str, region: str, name: str) -> None:
        with self._lock:
            self._generation += 1
            for url_id in [k for k, r in self._by_id.items() if (r.account, r.region, r.function_name) ==
                           (account, region, name)]:
                del self._by_id[url_id]

    # ------------------------------------------------------------------ helpers

    def _require_target(self, ref: FunctionRef, missing: Callable[[], errors.LambdaError] | None = None) -> None:
        """The function (and alias) must exist; `missing()` is AWS's answer when not, per operation."""
        with self.deps.store.read() as tx:
            try:
                require_function(tx, ref)
                if ref.qualifier:
                    resolve(tx, ref)  # 404 for an alias that does not exist
            except errors.LambdaError as e:
                if missing is None or e.code != "ResourceNotFoundException":
                    raise
                raise missing()

    def _existing(self, ref: FunctionRef, missing: Callable[[], errors.LambdaError]) -> FunctionUrlRecord:
        self._require_target(ref, missing)
        record = self.urls.get(ref.account, ref.region, ref.name, ref.qualifier or "")
        if record is None:
            raise _no_url()
        return record


def _no_function() -> errors.LambdaError:
    return errors.ResourceNotFound("Function does not exist")


def _no_url() -> errors.LambdaError:
    return errors.ResourceNotFound("The resource you requested does not exist.")


def _new_url_id() -> str:
    return "".join(secrets.choice(URL_ID_ALPHABET) for _ in range(URL_ID_LENGTH))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
