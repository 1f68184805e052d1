"""The one list of S3 operations: a request is named once, then dispatched by table.

``resolve`` turns (method, bucket, key, query, headers) into an operation name; the
``OPERATIONS`` table in gateway/app.py maps names to handlers. A request that names a
sub-resource we do not implement answers 501 NotImplemented, never a wrong 200.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import S3Error
from gateway.unconfigured import OPERATION_OF as UNCONFIGURED

# Sub-resources S3 defines that Shoal does not serve yet: each answers 501 (but GET of a
# bucket configuration Shoal cannot set answers as for a bucket without one).
UNSUPPORTED_SUBRESOURCES = frozenset({
    "abac", "accelerate", "analytics", "annotation",
    "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging",
    "metadataAnnotationTable", "metadataConfiguration", "metadataInventoryTable",
    "metadataJournalTable", "metadataTable", "metrics", "notification", "object-lock",
    "policyStatus", "publicAccessBlock", "renameObject",
    "replication", "requestPayment", "restore", "retention", "select", "session",
    "torrent",
})
# Bucket-only sub-resources: GET/PUT/DELETE ?name on a bucket is {Method}{value}; on a
# key they answer 501 (never falling through to PutObject/GetObject). A method without
# a handler (DeleteBucketVersioning) answers 501 from the operation table.
BUCKET_CONFIGS = {"policy": "BucketPolicy", "cors": "BucketCors", "website": "BucketWebsite",
                  "encryption": "BucketEncryption", "versioning": "BucketVersioning",
                  "ownershipControls": "BucketOwnershipControls"}


def is_form_upload(method: str, key: str, headers: Mapping[str, str]) -> bool:
    """A browser form upload (POST Object): authenticated by its policy, not by SigV4."""
    return (method == "POST" and not key
            and headers.get("content-type", "").lower().startswith("multipart/form-data"))


def resolve(method: str, bucket: str, key: str, query: Mapping[str, str],
            headers: Mapping[str, str]) -> str:
    if method == "OPTIONS" and bucket:
        return "Options"  # a CORS preflight, whatever the resource
    for name in query:
        if name in UNCONFIGURED and method == "GET" and bucket and not key:
            return UNCONFIGURED[name]  # read as on a bucket without one (gateway/unconfigured.py)
        if name in UNSUPPORTED_SUBRESOURCES or (key and name in BUCKET_CONFIGS):
            raise S3Error("NotImplemented", f"The '{name}' sub-resource is not implemented")
    if not bucket:
        if method == "GET":
            return "ListBuckets"
    elif not key:
        op = _bucket_operation(method, query, headers)
        if op:
            return op
    else:
        op = _object_operation(method, query, headers)
        if op:
            return op
    raise S3Error("NotImplemented", f"{method} on this resource is not implemented")


def _bucket_operation(method: str, query: Mapping[str, str],
                      headers: Mapping[str, str]) -> str | None:
    if "tagging" in query:
        return {"GET": "GetBucketTagging", "PUT": "PutBucketTagging",
                "DELETE": "DeleteBucketTagging"}.get(method)
    if "acl" in query:
        return {"GET": "GetBucketAcl", "PUT": "PutBucketAcl"}.get(method)
    for name, config in BUCKET_CONFIGS.items():
        if name in query and method in ("GET", "PUT", "DELETE"):
            return method.title() + config
    if method == "GET":
        if "uploads" in query:
            return "ListMultipartUploads"
        if "location" in query:
            return "GetBucketLocation"
        if "versions" in query:
            return "ListObjectVersions"
        return "ListObjectsV2" if query.get("list-type") == "2" else "ListObjects"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if is_form_upload(method, "", headers) and not query:
        return "PostObject"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method)


def _object_operation(method: str, query: Mapping[str, str],
                      headers: Mapping[str, str]) -> str | None:
    upload = "uploadId" in query
    if "tagging" in query:
        return {"GET": "GetObjectTagging", "PUT": "PutObjectTagging",
                "DELETE": "DeleteObjectTagging"}.get(method)
    if "acl" in query:
        return {"GET": "GetObjectAcl", "PUT": "PutObjectAcl"}.get(method)
    if method == "GET":
        if "attributes" in query:
            return "GetObjectAttributes"
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
