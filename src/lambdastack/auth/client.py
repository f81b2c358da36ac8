"""Sign the CLI's own requests to a server's `/_lambdastack/...` routes, as boto3 signs the API's.

The credentials are boto3's (environment, `~/.aws`, profile): the key a user set up for the AWS
CLI works for `lambdastack deploy` and `lambdastack cost --url` too. Without credentials the
request goes unsigned, which a `serve --auth none` server answers.
"""

from __future__ import annotations

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


def signed_headers(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus a SigV4 signature of the request (service `lambda`), if credentials are at hand."""
    session = botocore.session.Session()
    credentials = session.get_credentials()
    if credentials is None:
        return headers
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "lambda", session.get_config_variable("region") or "us-east-1") \
        .add_auth(request)
    return dict(request.headers.items())
