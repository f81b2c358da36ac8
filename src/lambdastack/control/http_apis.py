"""HTTP APIs (API Gateway v2): APIs, their Lambda proxy integrations, routes and stages.

The subset served is the one functions need in front of them: HTTP APIs (WebSocket APIs are
refused), `AWS_PROXY` integrations to a Lambda function or alias (payload format 1.0 or
2.0), routes without authorizers, and stages. Every stage serves the API as it is now, as an
`AutoDeploy` stage does. Quick create (`Target` on CreateApi) makes the integration, a
route (`$default` unless `RouteKey` says otherwise) and the `$default` stage in one step.

Documents are kept as the apigatewayv2 API shows them. `snapshot` hands the serving side one
API with all its parts, cached until the API changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from typing import Any

from lambdastack import errors
from lambdastack.control import route_keys
from lambdastack.control.names import FunctionRef, parse_function_name
from lambdastack.control.url_naming import UrlNaming
from lambdastack.store.http_apis import ApiGone, Document, HttpApiStore, Part, PartKind

ID_ALPHABET = string.ascii_lowercase + string.digits
API_ID_LENGTH = 10
PART_ID_LENGTH = 7
DEFAULT_STAGE = "$default"
ROUTE_SELECTION = "${request.method} ${request.path}"
MAX_TIMEOUT_MS = 30_000
PAYLOAD_VERSIONS = ("1.0", "2.0")
_STAGE_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_INVOCATIONS_URI = re.compile(r"arn:aws[a-z-]*:apigateway:[a-z0-9-]+:lambda:path/2015-03-31/functions/(.+)/invocations")
_ID = re.compile(r"[a-z0-9]+")


@dataclass
class ApiSnapshot:
    """One API with all its parts, as the serving side reads it."""

    api_id: str
    account: str
    region: str
    api: Document
    integrations: dict[str, Document] = field(default_factory=dict)
    routes: list[Document] = field(default_factory=list)
    stages: dict[str, Document] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)
def lambda_target(uri: str, account: str, region: str) -> FunctionRef:
    """The function (and qualifier) an integration URI names; raises BadRequestException."""
    match = _INVOCATIONS_URI.fullmatch(uri)
    arn = match.group(1) if match else uri
    if not arn.startswith("arn:") or ":function:" not in arn:
        raise errors.BadRequest(
            f"Invalid integration URI '{uri}': lambdastack integrates Lambda functions only; give a function or "
            "alias ARN, or arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function ARN>/invocations"
        )
    try:
        return parse_function_name(arn, account, region)
    except errors.LambdaError as e:
        raise errors.BadRequest(f"Invalid integration URI '{uri}': {e.message}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def _page(items: list[Document], params: dict[str, Any]) -> Document:
    """GetApis/GetRoutes/...: `Items` from `NextToken` on, at most `MaxResults`."""
    start = 0
    if params.get("NextToken"):
        token = params["NextToken"]
        if not token.isdigit():
            raise errors.BadRequest("Invalid nextToken")
        start = int(token)
    size = len(items)
    if params.get("MaxResults"):
        text = params["MaxResults"]
        if not text.isdigit() or not 1 <= int(text) <= 500:
            raise errors.BadRequest("maxResults must be a number between 1 and 500")
        size = int(text)
    out: Document = {"Items": items[start:start + size]}
    if start + size < len(items):
        out["NextToken"] = str(start + size)
    return out


class HttpApiService:
    def __init__(self, store: HttpApiStore, naming: UrlNaming) -> None:
        self.store = store
        self.naming = naming
        self._snapshots: dict[str, ApiSnapshot] = {}
        self._generation = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ APIs

    def create_api(self, account: str, region: str, params: dict[str, Any]) -> Document:
        if params["ProtocolType"] != "HTTP":
            raise errors.BadRequest(
                "lambdastack serves HTTP APIs only (ProtocolType HTTP); WebSocket APIs are not supported"
            )
        selection = params.get("RouteSelectionExpression", ROUTE_SELECTION)
        if selection != ROUTE_SELECTION:
            raise errors.BadRequest(f"The route selection expression of an HTTP API must be {ROUTE_SELECTION}")
        if params.get("RouteKey") is not None and params.get("Target") is None:
            raise errors.BadRequest("RouteKey is supported only with Target (quick create)")
        if params.get("CredentialsArn") is not None and params.get("Target") is None:
            raise errors.BadRequest("CredentialsArn is supported only with Target (quick create)")
        api_id = _new_id(API_ID_LENGTH)
        created = _now()
        api: Document = {
            "ApiEndpoint": self.naming.api_endpoint(api_id),
            "ApiId": api_id,
            "ApiKeySelectionExpression": params.get("ApiKeySelectionExpression", "$request.header.x-api-key"),
            "CreatedDate": created,
            "DisableExecuteApiEndpoint": bool(params.get("DisableExecuteApiEndpoint", False)),
            "Name": params["Name"],
            "ProtocolType": "HTTP",
            "RouteSelectionExpression": selection,
            "Tags": params.get("Tags") or {},
        }
        for member in ("CorsConfiguration", "Description", "Version"):
            if params.get(member) is not None:
                api[member] = params[member]
        parts: list[Part] = []
        if params.get("Target") is not None:
            integration = self._integration_document(account, region, {
                "IntegrationType": "AWS_PROXY", "IntegrationUri": params["Target"], "PayloadFormatVersion": "2.0",
                "CredentialsArn": params.get("CredentialsArn"),
            })
            route_key = params.get("RouteKey") or route_keys.DEFAULT
            route_keys.parse(route_key)
            route = self._route_document(route_key, {"Target": f"integrations/{integration['IntegrationId']}"})
            stage = self._stage_document({"StageName": DEFAULT_STAGE, "AutoDeploy": True}, created)
            parts = [Part("integration", integration["IntegrationId"], integration),
                     Part("route", route["RouteId"], route), Part("stage", DEFAULT_STAGE, stage)]
        self.store.create(account, region, api_id, api, parts)
        self._changed(api_id)
        return api

    def get_api(self, api_id: str) -> Document:
        return self._api(api_id)[2]

    def get_apis(self, account: str, region: str, params: dict[str, Any]) -> Document:
        return _page(self.store.apis(account, region), params)

    def delete_api(self, api_id: str) -> None:
        if not _ID.fullmatch(api_id) or not self.store.delete(api_id):
            raise self._api_not_found(api_id)
        self._changed(api_id)

    # ------------------------------------------------------------------ integrations

    def create_integration(self, api_id: str, params: dict[str, Any]) -> Document:
        account, region, _ = self._api(api_id)
        document = self._integration_document(account, region, params)
        self._put(api_id, Part("integration", document["IntegrationId"], document))
        return document

    def get_integration(self, api_id: str, integration_id: str) -> Document:
        return self._part(api_id, "integration", integration_id)

    def get_integrations(self, api_id: str, params: dict[str, Any]) -> Document:
        self._api(api_id)
        return _page(self.store.parts(api_id, "integration"), params)

    def delete_integration(self, api_id: str, integration_id: str) -> None:
        self._part(api_id, "integration", integration_id)
        target = f"integrations/{integration_id}"
        users = [r["RouteKey"] for r in self.store.parts(api_id, "route") if r.get("Target") == target]
        if users:
            raise errors.Conflict(
                f"Cannot delete integration {integration_id}: it is the target of route(s) {', '.join(users)}"
            )
        self.store.delete_part(api_id, "integration", integration_id)
        self._changed(api_id)

    def _integration_document(self, account: str, region: str, params: dict[str, Any]) -> Document:
        kind = params["IntegrationType"]
        if kind != "AWS_PROXY":
            raise errors.BadRequest(
                f"Integration type {kind} is not supported: lambdastack serves AWS_PROXY integrations with Lambda "
                "functions"
            )
        uri = params.get("IntegrationUri")
        if not uri:
            raise errors.BadRequest("IntegrationUri is required for an AWS_PROXY integration")
        lambda_target(uri, account, region)
        version = params.get("PayloadFormatVersion")
        if version is None:
            raise errors.BadRequest(
                "PayloadFormatVersion is required for a Lambda proxy integration of an HTTP API: 1.0 or 2.0"
            )
        if version not in PAYLOAD_VERSIONS:
            raise errors.BadRequest(f"Invalid PayloadFormatVersion {version}: supported values are 1.0 and 2.0")
        timeout = params.get("TimeoutInMillis", MAX_TIMEOUT_MS)
        if not 50 <= timeout <= MAX_TIMEOUT_MS:
            raise errors.BadRequest(f"TimeoutInMillis must be between 50 and {MAX_TIMEOUT_MS} for an HTTP API")
        if params.get("ConnectionType", "INTERNET") != "INTERNET":
            raise errors.BadRequest("VPC links are not supported: ConnectionType must be INTERNET")
        method = params.get("IntegrationMethod", "POST")
        if method != "POST":
            raise errors.BadRequest("The integration method of a Lambda proxy integration must be POST")
        document: Document = {
            "ConnectionType": "INTERNET",
            "IntegrationId": _new_id(PART_ID_LENGTH),
            "IntegrationMethod": "POST",
            "IntegrationType": "AWS_PROXY",
            "IntegrationUri": uri,
            "PayloadFormatVersion": version,
            "TimeoutInMillis": timeout,
        }
        for member in ("CredentialsArn", "Description"):
            if params.get(member) is not None:
                document[member] = params[member]
        return document

    # ------------------------------------------------------------------ routes

    def create_route(self, api_id: str, params: dict[str, Any]) -> Document:
        self._api(api_id)
        route_key = params["RouteKey"]
        route_keys.parse(route_key)
        if any(r["RouteKey"] == route_key for r in self.store.parts(api_id, "route")):
            raise errors.Conflict(f"Route with key {route_key} already exists for this API")
        document = self._route_document(route_key, params)
        target = document.get("Target")
        if target is not None:
            integration_id = target.removeprefix("integrations/")
            if not target.startswith("integrations/") or self.store.part(api_id, "integration", integration_id) is None:
                raise errors.BadRequest(f"Invalid target {target}: expected integrations/<id> of this API's "
                                        "integrations")
        self._put(api_id, Part("route", document["RouteId"], document))
        return document

    def get_route(self, api_id: str, route_id: str) -> Document:
        return self._part(api_id, "route", route_id)

    def get_routes(self, api_id: str, params: dict[str, Any]) -> Document:
        self._api(api_id)
        return _page(self.store.parts(api_id, "route"), params)

    def delete_route(self, api_id: str, route_id: str) -> None:
        self._part(api_id, "route", route_id)
        self.store.delete_part(api_id, "route", route_id)
        self._changed(api_id)

    @staticmethod
    def _route_document(route_key: str, params: dict[str, Any]) -> Document:
        authorization = params.get("AuthorizationType", "NONE")
        if authorization != "NONE" or params.get("AuthorizerId"):
            raise errors.BadRequest(
                f"Authorization type {authorization} is not supported: lambdastack serves routes without "
                "authorizers (AuthorizationType NONE)"
            )
        document: Document = {
            "ApiKeyRequired": False,
            "AuthorizationType": "NONE",
            "RouteId": _new_id(PART_ID_LENGTH),
            "RouteKey": route_key,
        }
        for member in ("Target", "OperationName"):
            if params.get(member) is not None:
                document[member] = params[member]
        return document

    # ------------------------------------------------------------------ stages

    def create_stage(self, api_id: str, params: dict[str, Any]) -> Document:
        self._api(api_id)
        name = params["StageName"]
        if name != DEFAULT_STAGE and not _STAGE_NAME.fullmatch(name):
            raise errors.BadRequest(f"Invalid stage name {name}: use $default, or letters, digits, '-' and '_'")
        if self.store.part(api_id, "stage", name) is not None:
            raise errors.Conflict(f"Stage {name} already exists")
        document = self._stage_document(params, _now())
        self._put(api_id, Part("stage", name, document))
        return document

    def get_stage(self, api_id: str, name: str) -> Document:
        return self._part(api_id, "stage", name)

    def get_stages(self, api_id: str, params: dict[str, Any]) -> Document:
        self._api(api_id)
        return _page(self.store.parts(api_id, "stage"), params)

    def delete_stage(self, api_id: str, name: str) -> None:
        self._part(api_id, "stage", name)
        self.store.delete_part(api_id, "stage", name)
        self._changed(api_id)

    @staticmethod
    def _stage_document(params: dict[str, Any], created: str) -> Document:
        document: Document = {
            "AutoDeploy": bool(params.get("AutoDeploy", False)),
            "CreatedDate": created,
            "DefaultRouteSettings": {"DetailedMetricsEnabled": False},
            "LastUpdatedDate": created,
            "RouteSettings": {},
            "StageName": params["StageName"],
            "StageVariables": params.get("StageVariables") or {},
            "Tags": params.get("Tags") or {},
        }
        if params.get("Description") is not None:
            document["Description"] = params["Description"]
        return document

    # ------------------------------------------------------------------ serving

    def snapshot(self, api_id: str) -> ApiSnapshot | None:
        """The API with all its parts, or None; the same object until the API changes."""
        found = self._snapshots.get(api_id)
        if found is not None:
            return found
        with self._lock:
            generation = self._generation
        owned = self.store.get(api_id)
        if owned is None:
            return None
        snapshot = ApiSnapshot(
            api_id, owned[0], owned[1], owned[2],
            integrations={d["IntegrationId"]: d for d in self.store.parts(api_id, "integration")},
            routes=self.store.parts(api_id, "route"),
            stages={d["StageName"]: d for d in self.store.parts(api_id, "stage")},
        )
        with self._lock:
            if generation == self._generation:  # no change was written while it was read
                self._snapshots[api_id] = snapshot
        return snapshot

    # ------------------------------------------------------------------ helpers

    def _changed(self, api_id: str) -> None:
        with self._lock:
            self._generation += 1
            self._snapshots.pop(api_id, None)

    def _put(self, api_id: str, part: Part) -> None:
        try:
            self.store.put_part(api_id, part)
        except ApiGone:
            raise self._api_not_found(api_id)
        self._changed(api_id)

    def _api(self, api_id: str) -> tuple[str, str, Document]:
        found = self.store.get(api_id) if _ID.fullmatch(api_id) else None
        if found is None:
            raise self._api_not_found(api_id)
        return found

    def _part(self, api_id: str, kind: PartKind, part_id: str) -> Document:
        self._api(api_id)
        found = self.store.part(api_id, kind, part_id)
        if found is None:
            what = {"integration": "Integration", "route": "Route", "stage": "Stage"}[kind]
            raise errors.NotFound(f"Invalid {what} identifier specified {part_id}", ResourceType=what)
        return found

    @staticmethod
    def _api_not_found(api_id: str) -> errors.LambdaError:
        return errors.NotFound(f"Invalid API identifier specified {api_id}", ResourceType="Api")
