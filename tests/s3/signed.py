"""Raw SigV4-signed requests, for bodies and headers an SDK will not send (bad XML...)."""

from __future__ import annotations

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.harness import ShoalCluster, http


def signed(cluster: ShoalCluster, method: str, path: str, body: bytes = b"",
           headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a signed request to ``path`` (with its query string)."""
    url = cluster.endpoint + path
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials(cluster.access_key, cluster.secret_key)
    S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    return http(method, url, body or None, dict(request.headers.items()))
