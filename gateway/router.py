"""The one list of S3 operations: a request is named once, then dispatched by table.

``resolve`` turns (method, bucket, key, query, headers) into an operation name; the
``OPERATIONS`` table in gateway/app.py maps names to handlers. A request that names a
sub-resource we do not implement answers 501 NotImplemented, never a wrong 200.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import S3Error

# Sub-resources S3 defines that Shoal does not serve yet: each answers 501.
UNSUPPORTED_SUBRESOURCES = frozenset({
    "accelerate", "acl", "analytics", "attributes", "cors",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging", "metrics",
    "notification", "object-lock", "ownershipControls", "policy", "policyStatus",
    "publicAccessBlock", "replication", "requestPayment", "restore", "retention", "select",
    "tagging", "torrent", "versioning", "versions", "website",
})


def resolve(method: str, bucket: str, key: str, query: Mapping[str, str],
            headers: Mapping[str, str]) -> str:
    for name in query:
        if name in UNSUPPORTED_SUBRESOURCES:
            raise S3Error("NotImplemented", f"The '{name}' sub-resource is not implemented")
    if not bucket:
        if method == "GET":
            return "ListBuckets"
    elif not key:
        op = _bucket_operation(method, query)
        if op:
            return op
    else:
        op = _object_operation(method, query, headers)
        if op:
            return op
    raise S3Error("NotImplemented", f"{method} on this resource is not implemented")


def _bucket_operation(method: str, query: Mapping[str, str]) -> str | None:
    if "encryption" in query:
        return {"GET": "GetBucketEncryption", "PUT": "PutBucketEncryption",
                "DELETE": "DeleteBucketEncryption"}.get(method)
    if method == "GET":
        if "uploads" in query:
            return "ListMultipartUploads"
        if "location" in query:
            return "GetBucketLocation"
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method)


def _object_operation(method: str, query: Mapping[str, str],
                      headers: Mapping[str, str]) -> str | None:
    upload = "uploadId" in query
    if method == "GET":
        return "ListParts" if upload else "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "PUT":
        copy = "x-amz-copy-source" in headers
        if upload and "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if upload:
            return "CompleteMultipartUpload"
    if method == "DELETE":
        return "AbortMultipartUpload" if upload else "DeleteObject"
    return None
