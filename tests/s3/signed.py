"""Raw SigV4-signed requests, for bodies and headers an SDK will not send (bad XML...)."""

from __future__ import annotations

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.harness import ShoalCluster, http


class _DeclaredPayload(S3SigV4Auth):
    """botocore's signer, with x-amz-content-sha256 set to what the caller declares (a
    streaming mode) instead of the body's hash."""

    def __init__(self, credentials: Credentials, declared: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self.declared = declared

    def payload(self, request: AWSRequest) -> str:
        return self.declared


def signed(cluster: ShoalCluster, method: str, path: str, body: bytes = b"",
           headers: dict[str, str] | None = None, payload: str | None = None
           ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a signed request to ``path`` (with its query string).
    ``payload``: the x-amz-content-sha256 to sign and send, e.g.
    STREAMING-UNSIGNED-PAYLOAD-TRAILER (default: the body's SHA-256)."""
    url = cluster.endpoint + path
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials(cluster.access_key, cluster.secret_key)
    signer = (S3SigV4Auth(credentials, "s3", "us-east-1") if payload is None
              else _DeclaredPayload(credentials, payload))
    signer.add_auth(request)
    return http(method, url, body or None, dict(request.headers.items()))
