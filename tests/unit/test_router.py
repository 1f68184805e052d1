"""The router against botocore's S3 model: every operation S3 defines is either named
correctly or refused with 501, never dispatched to a different handler."""

from __future__ import annotations

import botocore.session
import pytest

from gateway.app import OPERATIONS
from gateway.errors import S3Error
from gateway.router import resolve

MODEL = botocore.session.get_session().get_service_model("s3")
# Same request shape as another operation, told apart only by the endpoint S3 serves it on
# (directory buckets); Shoal has no such endpoint.
SAME_AS_OTHER = {"ListDirectoryBuckets": "ListBuckets",
                 # deprecated twins: the same request as their successors
                 "GetBucketLifecycle": "GetBucketLifecycleConfiguration",
                 "GetBucketNotification": "GetBucketNotificationConfiguration"}


def _request(name: str) -> tuple[str, str, str, dict[str, str], dict[str, str]]:
    op = MODEL.operation_model(name)
    path, _, fixed = op.http["requestUri"].partition("?")
    query = {}
    for piece in fixed.split("&"):
        if piece:
            k, _, v = piece.partition("=")
            query[k] = v
    shape = op.input_shape
    for member in (shape.required_members if shape else []):
        where = shape.members[member].serialization
        if where.get("location") == "querystring":
            query[where["name"]] = "1"
    headers = {"x-amz-copy-source": "b/k"} if name in ("CopyObject", "UploadPartCopy") else {}
    return (op.http["method"], "bkt" if "{Bucket}" in path else "",
            "key" if "{Key" in path else "", query, headers)


@pytest.mark.parametrize("name", MODEL.operation_names)
def test_every_s3_operation_is_routed_or_refused(name):
    method, bucket, key, query, headers = _request(name)
    try:
        got = resolve(method, bucket, key, query, headers)
    except S3Error as err:
        assert err.code == "NotImplemented" and err.status == 501
        assert name not in OPERATIONS
        return
    assert got == SAME_AS_OTHER.get(name, name)
    assert got in OPERATIONS
