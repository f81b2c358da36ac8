"""Deployment packages read from Amazon S3 (`Code.S3Bucket/S3Key/S3ObjectVersion`).

The object is read once, when the function or layer version is created or its code
updated, from the S3-compatible endpoint `serve --aws-endpoint-url` names (moto, MinIO,
Ceph, LocalStack or AWS itself) with the credentials boto3 finds in the standard places
(environment, shared config and credentials files). What was read is then stored like an
inline package, by SHA-256: a later change or deletion in S3 does not change the function.

S3's refusals come back as Lambda words them: an InvalidParameterValueException
`Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: ...`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from lambdastack import errors
from lambdastack.control.codezip import UNZIPPED_TOO_LARGE
from lambdastack.control.limits import UNZIPPED_MAX_BYTES

# S3's own words for the errors a deployment meets most (what Lambda repeats after the code).
_S3_MESSAGES = {
    "NoSuchBucket": "The specified bucket does not exist",
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchVersion": "The specified version does not exist.",
    "AccessDenied": "Access Denied",
}
# Codes S3 sends without a body (a HEAD, or a bare status) mapped to what they mean for a GET.
_BARE_STATUS = {"404": "NoSuchKey", "403": "AccessDenied"}
_CHUNK = 1 << 20

NO_ENDPOINT = (
    "Code in Amazon S3 (S3Bucket/S3Key) needs an S3-compatible endpoint, and this server has none: start "
    "lambdastack serve with --aws-endpoint-url URL (MinIO, Ceph, LocalStack, moto or https://s3.amazonaws.com), "
    "or send the .zip file inline as ZipFile."
)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    version: str | None = None

    def __str__(self) -> str:
        where = f"s3://{self.bucket}/{self.key}"
        return f"{where}?versionId={self.version}" if self.version else where


def get_object_error(code: str, message: str) -> errors.LambdaError:
    """Lambda's answer when reading the package from S3 failed with S3's `code`."""
    code = _BARE_STATUS.get(code, code)
    message = _S3_MESSAGES.get(code, message)
    return errors.InvalidParameterValue(
        f"Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {message}"
    )


class S3CodeSource:
    """Reads packages from one S3-compatible endpoint (None: there is none, and S3 code is refused)."""

    def __init__(self, endpoint_url: str | None) -> None:
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, region: str) -> Any:
        with self._lock:
            found = self._clients.get(region)
            if found is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session()
                kwargs: dict[str, Any] = {}
                if session.get_credentials() is None:
                    # An emulator takes any credentials; boto3 refuses to sign without some.
                    kwargs.update(aws_access_key_id="lambdastack", aws_secret_access_key="lambdastack")
                found = self._clients[region] = session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=region,
                    config=Config(
                        s3={"addressing_style": "path"},
                        retries={"max_attempts": 2, "mode": "standard"},
                        connect_timeout=5,
                        read_timeout=60,
                    ),
                    **kwargs,
                )
            return found

    def fetch(self, location: S3Location, region: str) -> bytes:
        """The object's bytes, refused as Lambda refuses it (missing, wrong version, too large)."""
        if not self.endpoint_url:
            raise errors.InvalidParameterValue(NO_ENDPOINT)
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {"Bucket": location.bucket, "Key": location.key}
        if location.version:
            params["VersionId"] = location.version
        try:
            response = self._client(region).get_object(**params)
            body = response["Body"]
            try:
                if int(response.get("ContentLength") or 0) > UNZIPPED_MAX_BYTES:
                    raise errors.InvalidParameterValue(UNZIPPED_TOO_LARGE)
                return _read_at_most(body, UNZIPPED_MAX_BYTES)
            finally:
                body.close()
        except ClientError as e:
            error = e.response.get("Error") or {}
            raise get_object_error(str(error.get("Code") or "InternalError"), str(error.get("Message") or ""))
        except BotoCoreError as e:
            raise errors.InvalidParameterValue(
                f"Error occurred while GetObject: the S3 endpoint {self.endpoint_url} could not be read "
                f"for {location}: {e}"
            )


def _read_at_most(body: Any, limit: int) -> bytes:
    """The whole stream, refused as too large as soon as it passes `limit` (whatever it announced)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = body.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise errors.InvalidParameterValue(UNZIPPED_TOO_LARGE)
        chunks.append(chunk)
