"""Which permission each S3 operation needs on its bucket, checked before dispatch.

Every operation in gateway/app.py OPERATIONS must appear in ``REQUIRED`` (a unit test
holds this), so a new operation cannot slip through unchecked. ``None`` means the
operation is not about one existing bucket: ListBuckets (filtered to the buckets the key
may see) and CreateBucket (any key may create a bucket and becomes its owner).

A key without the permission gets AccessDenied whether or not the bucket exists, so
a key learns nothing about buckets it may not access.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from gateway.keys import Principal, denied
from gateway.unconfigured import OPERATION_OF as UNCONFIGURED

REQUIRED: dict[str, str | None] = {
    "ListBuckets": None,
    "CreateBucket": None,
    "HeadBucket": "read",
    "GetBucketLocation": "read",
    "ListObjects": "read",
    "ListObjectsV2": "read",
    "GetObject": "read",
    "HeadObject": "read",
    "ListParts": "read",
    "ListMultipartUploads": "read",
    "GetBucketEncryption": "read",
    "GetObjectAttributes": "read",
    "ListObjectVersions": "read",
    "GetBucketVersioning": "read",
    "GetObjectTagging": "read",
    "GetBucketTagging": "read",
    "GetBucketCors": "read",
    "GetBucketWebsite": "read",
    "GetBucketAcl": "read",
    "GetObjectAcl": "read",
    "GetBucketOwnershipControls": "read",
    **{operation: "read" for operation in UNCONFIGURED.values()},
    "PutObject": "write",
    "DeleteObject": "write",
    "DeleteObjects": "write",
    "CopyObject": "write",
    "UploadPartCopy": "write",
    "CreateMultipartUpload": "write",
    "UploadPart": "write",
    "CompleteMultipartUpload": "write",
    "AbortMultipartUpload": "write",
    "PostObject": "write",
    "PutObjectTagging": "write",
    "DeleteObjectTagging": "write",
    "DeleteBucket": "owner",
    "PutBucketEncryption": "owner",
    "DeleteBucketEncryption": "owner",
    "PutBucketVersioning": "owner",
    "PutBucketTagging": "owner",
    "DeleteBucketTagging": "owner",
    "GetBucketPolicy": "owner",
    "PutBucketPolicy": "owner",
    "DeleteBucketPolicy": "owner",
    "PutBucketCors": "owner",
    "DeleteBucketCors": "owner",
    "PutBucketWebsite": "owner",
    "DeleteBucketWebsite": "owner",
    "PutBucketAcl": "owner",
    "PutObjectAcl": "owner",
    "PutBucketOwnershipControls": "owner",
    "DeleteBucketOwnershipControls": "owner",
    "Options": None,  # a CORS preflight carries no credentials; CORS rules decide
}


def copy_source_bucket(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-amz-copy-source")
    if value is None:
        return None
    return unquote(value.split("?", 1)[0]).lstrip("/").split("/", 1)[0]


def authorize(principal: Principal | None, operation: str, bucket: str,
              headers: Mapping[str, str]) -> None:
    """Raise AccessDenied unless ``principal`` may run ``operation`` on ``bucket``.

    Fails closed: an operation missing from ``REQUIRED`` is refused to every key but an
    admin key. Copies also need ``read`` on the source bucket.
    """
    if principal is None:
        raise denied()
    if principal.admin:
        return
    if operation not in REQUIRED:
        raise denied()
    level = REQUIRED[operation]
    if level is not None and not principal.allows(bucket, level):
        raise denied()
    source = copy_source_bucket(headers) if operation in ("CopyObject", "UploadPartCopy") else None
    if source is not None and not principal.allows(source, "read"):
        raise denied()
