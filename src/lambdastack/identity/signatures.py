"""Check a request's SigV4 signature (the `Authorization` header), as AWS_IAM Function URLs need.

A signature can be checked only with the secret it was made with. The accepted credentials:
- the access keys given to the server (`serve --access-key ID:SECRET`), which stand for IAM
  users of the server's account;
- the credentials the server gives each function (`identity.credentials`), recognised by their
  session token, whose secret the server can recompute: a function may call an AWS_IAM URL with
  its own execution-role credentials, as on Lambda.

The canonical request is built by botocore's own SigV4 signer over exactly the headers the
signature says it signed, with the date it was signed at (at most 15 minutes off).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from lambdastack.identity.credentials import CredentialMinter

MAX_SKEW = dt.timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$"
)
UNSIGNED = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


@dataclass(frozen=True)
class Principal:
    """Who signed: what `requestContext.authorizer.iam` of a URL's event says."""

    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str

    def as_event(self) -> dict[str, Any]:
        return {"accessKey": self.access_key, "accountId": self.account_id, "callerId": self.caller_id,
                "cognitoIdentity": None, "principalOrgId": None, "userArn": self.user_arn, "userId": self.user_id}


class _SignedHeadersOnly(SigV4Auth):
    """botocore's signer, told which headers were signed (it would otherwise pick its own)."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            chosen[name] = request.headers.get(name, "")
        return chosen


class SignatureVerifier:
    def __init__(self, account: str, minter: CredentialMinter, keys: Mapping[str, str]) -> None:
        self.account = account
        self.minter = minter
        self.keys = dict(keys)

    def verify(self, *, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes,
               service: str, now: dt.datetime | None = None) -> Principal | None:
        """The principal whose valid signature the request carries, or None."""
        joined: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            joined[lower] = f"{joined[lower]},{value.strip()}" if lower in joined else value.strip()
        match = _AUTHORIZATION.match(joined.get("authorization", ""))
        if match is None:
            return None
        access_key, day, region, signed_service, signed_names, signature = match.groups()
        amz_date = joined.get("x-amz-date", "")
        if signed_service != service or not amz_date.startswith(day) or "host" not in signed_names.split(";"):
            return None
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        if abs((now or dt.datetime.now(dt.UTC)) - signed_at) > MAX_SKEW:
            return None
        content_hash = joined.get("x-amz-content-sha256")
        if content_hash is not None and content_hash not in UNSIGNED and not hmac.compare_digest(
                content_hash, hashlib.sha256(body).hexdigest()):
            return None
        token = joined.get("x-amz-security-token")
        found = self._secret(access_key, token)
        if found is None:
            return None
        secret, principal = found
        url = f"http://{joined.get('host', '')}{raw_path}" + (f"?{raw_query}" if raw_query else "")
        request = AWSRequest(method=method, url=url, headers=joined, data=body)
        request.context["timestamp"] = amz_date
        signer = _SignedHeadersOnly(Credentials(access_key, secret, token), service, region, signed_names.split(";"))
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return principal if hmac.compare_digest(expected, signature) else None

    def _secret(self, access_key: str, token: str | None) -> tuple[str, Principal] | None:
        if token is None:
            secret = self.keys.get(access_key)
            if secret is None:
                return None
            user = f"arn:aws:iam::{self.account}:user/{access_key}"
            return secret, Principal(access_key, self.account, access_key, user, access_key)
        caller = self.minter.identify(access_key, token)
        if caller is None:
            return None
        function = caller.function_arn.split(":")[6]
        role_name = caller.role.rsplit("/", 1)[-1]
        account = caller.function_arn.split(":")[4]
        role_id = f"AROA{hashlib.sha256(caller.role.encode()).hexdigest()[:17].upper()}:{function}"
        assumed = f"arn:aws:sts::{account}:assumed-role/{role_name}/{function}"
        return self.minter.secret_for(access_key), Principal(access_key, account, role_id, assumed, role_id)
