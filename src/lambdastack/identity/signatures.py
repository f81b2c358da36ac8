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
import functools
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
    """botocore's signer, told which headers were signed (it would otherwise pick its own), with the
    request's headers (lower-case names, repeated ones joined) and body at hand: canonical headers
    and the payload hash come from them directly, not through botocore's prepared request."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str],
                 headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._headers = headers
        self._body = body

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            chosen[name] = self._headers.get(name, "")
        return chosen

    def canonical_headers(self, headers_to_sign: HTTPHeaders) -> str:
        return "\n".join(f"{name}:{' '.join(self._headers.get(name, '').split())}"
                         for name in sorted(set(self._signed)))

    def signed_headers(self, headers_to_sign: HTTPHeaders) -> str:
        return ";".join(sorted(set(self._signed)))

    def payload(self, request: AWSRequest) -> str:
        return hashlib.sha256(self._body).hexdigest()


class SignatureRefused(Exception):
    """Why a request's signature is not accepted, in AWS's words: error code, message, HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


MISSING = "Missing Authentication Token"
UNRECOGNIZED = "The security token included in the request is invalid."
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


class KeyLookup(Protocol):
    def find(self, access_key_id: str) -> StoredSecret | None: ...


class StoredSecret(Protocol):
    @property
    def secret(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def name(self) -> str | None: ...


class SignatureVerifier:
    def __init__(self, account: str, minter: CredentialMinter, keys: Mapping[str, str],
                 key_store: KeyLookup | None = None) -> None:
        self.account = account
        self.minter = minter
        self.keys = dict(keys)
        self.key_store = key_store

    def verify(self, *, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes,
               service: str, now: dt.datetime | None = None) -> Principal | None:
        """The principal whose valid signature the request carries, or None."""
        try:
            return self.check(method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=body,
                              service=service, now=now)
        except SignatureRefused:
            return None

    def check(self, *, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes,
              service: str | None, now: dt.datetime | None = None) -> Principal:
        """The principal whose valid signature the request carries; else `SignatureRefused`, saying why
        as AWS does. `service` None: whichever service the signature's scope names."""
        joined: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            joined[lower] = f"{joined[lower]},{value.strip()}" if lower in joined else value.strip()
        authorization = joined.get("authorization", "")
        max_age = MAX_SKEW
        if not authorization and "X-Amz-Signature=" in raw_query:
            authorization, raw_query, max_age = _from_query(raw_query, joined)
        if not authorization:
            raise SignatureRefused("MissingAuthenticationTokenException", MISSING)
        match = _AUTHORIZATION.match(authorization)
        if match is None:
            raise SignatureRefused("IncompleteSignatureException",
                                   f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' "
                                   f"parameters of AWS4-HMAC-SHA256. Authorization={authorization}", 400)
        access_key, day, region, signed_service, signed_names, signature = match.groups()
        amz_date = joined.get("x-amz-date", "")
        if service is not None and signed_service != service:
            raise SignatureRefused("InvalidSignatureException", MISMATCH)
        try:
            signed_at = _parse_stamp(amz_date)
        except ValueError:
            raise SignatureRefused("IncompleteSignatureException",
                                   "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                                   "header.", 400) from None
        if not amz_date.startswith(day) or "host" not in signed_names.split(";"):
            raise SignatureRefused("InvalidSignatureException", MISMATCH)
        current = now or dt.datetime.now(dt.UTC)
        if current - signed_at > MAX_SKEW and max_age == MAX_SKEW:
            raise SignatureRefused("InvalidSignatureException", f"Signature expired: {amz_date} is now earlier than "
                                   f"{_stamp(current - MAX_SKEW)} ({_stamp(current)} - 15 min.)")
        if current - signed_at > max_age:
            raise SignatureRefused("InvalidSignatureException", f"Signature expired: {amz_date} is now earlier than "
                                   f"{_stamp(current - max_age)} ({_stamp(current)} - "
                                   f"{int(max_age.total_seconds())} sec.)")
        if signed_at - current > MAX_SKEW:
            raise SignatureRefused("InvalidSignatureException", f"Signature not yet current: {amz_date} is still "
                                   f"later than {_stamp(current + MAX_SKEW)} ({_stamp(current)} + 15 min.)")
        token = joined.get("x-amz-security-token")
        found = self._secret(access_key, token)
        if found is None:
            raise SignatureRefused("UnrecognizedClientException", UNRECOGNIZED)
        content_hash = joined.get("x-amz-content-sha256")
        if content_hash is not None and content_hash not in UNSIGNED and not hmac.compare_digest(
                content_hash, hashlib.sha256(body).hexdigest()):
            raise SignatureRefused("InvalidSignatureException", MISMATCH)
        secret, principal = found
        url = f"http://{joined.get('host', '')}{raw_path}" + (f"?{raw_query}" if raw_query else "")
        request = AWSRequest(method=method, url=url, headers={"X-Amz-Content-SHA256": content_hash}
                             if content_hash is not None else None)
        request.context["timestamp"] = amz_date
        signer = _SignedHeadersOnly(Credentials(access_key, secret, token), signed_service, region,
                                    signed_names.split(";"), joined, body)
        string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
        expected = hmac.new(_signing_key(secret, day, region, signed_service), string_to_sign.encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise SignatureRefused("InvalidSignatureException", MISMATCH)
        return principal

    def _secret(self, access_key: str, token: str | None) -> tuple[str, Principal] | None:
        if token is None:
            secret = self.keys.get(access_key)
            if secret is not None:
                user = f"arn:aws:iam::{self.account}:user/{access_key}"
                return secret, Principal(access_key, self.account, access_key, user, access_key)
            stored = self.key_store.find(access_key) if self.key_store is not None else None
            if stored is None:
                return None
            name = stored.name or access_key
            user = f"arn:aws:iam::{stored.account}:user/{name}"
            user_id = f"AIDA{hashlib.sha256(access_key.encode()).hexdigest()[:17].upper()}"
            return stored.secret, Principal(access_key, stored.account, user_id, user, user_id)
        caller = self.minter.identify(access_key, token)
        if caller is None:
            return None
        function = caller.function_arn.split(":")[6]
        role_name = caller.role.rsplit("/", 1)[-1]
        account = caller.function_arn.split(":")[4]
        role_id = f"AROA{hashlib.sha256(caller.role.encode()).hexdigest()[:17].upper()}:{function}"
        assumed = f"arn:aws:sts::{account}:assumed-role/{role_name}/{function}"
        return self.minter.secret_for(access_key), Principal(access_key, account, role_id, assumed, role_id)


def _from_query(raw_query: str, joined: dict[str, str]) -> tuple[str, str, dt.timedelta]:
    """A presigned request (`X-Amz-Signature` in the query): its signature as an Authorization header
    would carry it (X-Amz-Date and X-Amz-Security-Token moved into `joined`), the query it was
    computed over (all but X-Amz-Signature), and how long it is valid (X-Amz-Expires)."""
    params: dict[str, str] = {}
    kept = []
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        if name == "X-Amz-Signature":
            params[name] = urllib.parse.unquote(value)
            continue
        kept.append(pair)
        if name.startswith("X-Amz-"):
            params[name] = urllib.parse.unquote(value)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "", raw_query, MAX_SKEW
    joined["x-amz-date"] = params.get("X-Amz-Date", "")
    if "X-Amz-Security-Token" in params:
        joined["x-amz-security-token"] = params["X-Amz-Security-Token"]
    try:
        expires = min(int(params.get("X-Amz-Expires", "")), 604800)
    except ValueError:
        expires = 0
    authorization = (f"AWS4-HMAC-SHA256 Credential={params.get('X-Amz-Credential', '')}, "
                     f"SignedHeaders={params.get('X-Amz-SignedHeaders', '')}, "
                     f"Signature={params.get('X-Amz-Signature', '')}")
    return authorization, "&".join(kept), dt.timedelta(seconds=expires)


_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


def _parse_stamp(text: str) -> dt.datetime:
    """`20261205T183000Z` (SigV4's X-Amz-Date); strptime costs several times more."""
    match = _STAMP.match(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """SigV4's derived key: the same for a key's every request of a day, region and service."""
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")
