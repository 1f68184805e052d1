"""Small helpers shared by the S3 compatibility tests (no stand-ins for Shoal parts)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def error_doc(call, *args, **kwargs) -> dict:  # noqa: ANN001
    """The parsed error (Code, Message and S3's extra fields) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return {**info.value.response["Error"],
            "Status": info.value.response["ResponseMetadata"]["HTTPStatusCode"]}


def client_with_object(cluster, bucket: str, body: bytes):  # noqa: ANN001, ANN201
    """A boto3 client, after creating ``bucket`` holding ``body`` at key "k"."""
    s3 = cluster.client()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=body)
    return s3


def signed_get(cluster, path: str, method: str = "GET"  # noqa: ANN001
               ) -> tuple[int, dict[str, str], bytes]:
    """A header-signed request (GET unless told) of exactly ``path`` (with its query; or a whole URL): botocore's
    signer, but no operation model adding or decoding parameters."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.harness import http

    url = path if path.startswith("http") else cluster.endpoint + path
    request = AWSRequest(method, url)
    S3SigV4Auth(Credentials(cluster.access_key, cluster.secret_key), "s3",
                "us-east-1").add_auth(request)
    return http(method, url, headers=dict(request.headers))
