"""The S3 gateway as an ASGI app: authenticate, name the operation, dispatch, render errors.

Stateless: everything durable is on the storage nodes, so any gateway process can be
killed at any time and another one serves the same requests.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.membership import Membership
from cluster.nodeclient import NodeClient
from gateway import (
    acl,
    admin,
    attributes,
    bucketpolicy,
    buckets,
    copyobject,
    cors,
    deletes,
    encryption,
    limits,
    listing,
    multipart,
    objects,
    postobject,
    tagging,
    unconfigured,
    versioning,
    versionlist,
    website,
)
from gateway.access import authorize
from gateway.backend import Backend
from gateway.catalog import Catalog
from gateway.errors import S3Error, render
from gateway.keys import Principal, credential_key
from gateway.router import resolve
from gateway.security import Security
from gateway.sigv4 import AuthResult, verify
from gateway.vhost import split_request_path

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
HEALTH_PATH = "/_shoal/health"


@dataclass
class S3Request:
    """What every handler receives: the parsed request and the cluster behind it."""

    request: Request
    operation: str
    bucket: str
    key: str
    query: dict[str, str]
    auth: AuthResult | None
    catalog: Catalog
    backend: Backend
    request_id: str
    principal: Principal | None  # None: anonymous
    security: Security

    @property
    def headers(self) -> Any:
        return self.request.headers


Handler = Callable[[S3Request], Awaitable[Response]]

OPERATIONS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "ListObjects": listing.list_objects_v1,
    "ListObjectsV2": listing.list_objects_v2,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": deletes.delete_object,
    "DeleteObjects": deletes.delete_objects,
    "CopyObject": copyobject.copy_object,
    "UploadPartCopy": copyobject.upload_part_copy,
    "GetObjectAttributes": attributes.get_object_attributes,
    "PostObject": postobject.post_object,
    "CreateMultipartUpload": multipart.create_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_upload,
    "AbortMultipartUpload": multipart.abort_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
    "GetBucketVersioning": versioning.get_bucket_versioning,
    "PutBucketVersioning": versioning.put_bucket_versioning,
    "ListObjectVersions": versionlist.list_object_versions,
    "GetObjectTagging": tagging.get_object_tagging,
    "PutObjectTagging": tagging.put_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "GetBucketPolicy": bucketpolicy.get_policy,
    "PutBucketPolicy": bucketpolicy.put_policy,
    "DeleteBucketPolicy": bucketpolicy.delete_policy,
    "GetBucketCors": cors.get_cors,
    "PutBucketCors": cors.put_cors,
    "DeleteBucketCors": cors.delete_cors,
    "Options": cors.preflight,
    "GetBucketWebsite": website.get_website,
    "PutBucketWebsite": website.put_website,
    "DeleteBucketWebsite": website.delete_website,
    "GetBucketEncryption": encryption.get_bucket_encryption,
    "PutBucketEncryption": encryption.put_bucket_encryption,
    "DeleteBucketEncryption": encryption.delete_bucket_encryption,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "GetBucketOwnershipControls": acl.get_ownership_controls,
    "PutBucketOwnershipControls": acl.put_ownership_controls,
    "DeleteBucketOwnershipControls": acl.delete_ownership_controls,
    **{operation: unconfigured.read for operation in unconfigured.OPERATION_OF.values()},
}


def _has_unread_body(request: Request) -> bool:
    declared = request.headers.get("content-length", "0") not in ("", "0") or (
        "transfer-encoding" in request.headers)
    return declared and not getattr(request, "_stream_consumed", False)


class S3App:
    def __init__(self, backend: Backend, credentials: dict[str, str], secret: bytes,
                 admin_token: str | None = None, domains: tuple[str, ...] = ()) -> None:
        self.backend = backend
        self.domains = domains  # base domains for virtual-hosted-style requests
        self.catalog = Catalog(backend)
        self.security = Security.build(self.catalog, secret, credentials, admin_token)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = uuid.uuid4().hex[:16].upper()
        try:
            response = await self.handle(request, request_id)
        except S3Error as err:
            response = render(err, scope.get("path", ""), request_id)
            response.headers.update(getattr(err, "headers", {}))  # x-amz-delete-marker...
        except Exception:
            log.exception("internal error on %s %s", scope["method"], scope.get("path"))
            response = render(S3Error("InternalError", "We encountered an internal error. "
                                      "Please try again."), scope.get("path", ""), request_id)
        if request.method != "OPTIONS":  # a preflight's headers come from its handler
            bucket = split_request_path(scope.get("path", ""), request.headers.get("host"),
                                        self.domains)[0]
            await cors.add_response_headers(self.catalog, request, bucket, response)
        if response.status_code >= 400 and _has_unread_body(request):
            # The client may still be waiting (Expect: 100-continue) or sending: the
            # connection's byte stream is no longer in step, so it must not be reused.
            response.headers["connection"] = "close"
        response.headers.setdefault("x-amz-request-id", request_id)
        response.headers.setdefault("server", "Shoal")
        await response(scope, receive, send)

    async def handle(self, request: Request, request_id: str) -> Response:
        scope = request.scope
        if scope["path"] == HEALTH_PATH:
            return self.health()
        if scope["path"].startswith(admin.PREFIX):
            return await admin.handle(request, self.catalog, self.security)
        limits.check_headers(scope["headers"])
        # scope["path"] is percent-decoded (UTF-8) by the server.
        bucket, key = split_request_path(scope["path"], request.headers.get("host"),
                                         self.domains)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", "Your key is too long")
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        keys = self.security.keys
        await keys.prefetch(credential_key(scope["headers"], scope["query_string"]))
        auth = verify(
            scope["method"], scope.get("raw_path") or scope["path"].encode(),
            scope["query_string"], scope["headers"], keys.secret_for, time.time(),
        )
        operation = resolve(scope["method"], bucket, key, query, request.headers)
        principal = None
        if auth is None:
            if operation != "PostObject":  # POST forms carry a signed policy
                # anonymous: only what the bucket policy opens (and preflights)
                await bucketpolicy.authorize_anonymous(self.catalog, request, operation,
                                                       bucket, key)
        else:
            principal = keys.principal_for(auth.access_key)
            authorize(principal, operation, bucket, request.headers)
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise S3Error("NotImplemented", f"{operation} is not implemented")
        limits.check_body(operation, request.headers)
        return await handler(S3Request(request, operation, bucket, key, query, auth,
                                       self.catalog, self.backend, request_id, principal,
                                       self.security))

    def health(self) -> Response:
        """Unauthenticated liveness: how many storage nodes this gateway sees, by status.
        (Bucket names cannot start with '_', so the path cannot shadow a bucket.)"""
        counts: dict[str, int] = {}
        for m in self.backend.node_members():
            counts[m.status] = counts.get(m.status, 0) + 1
        return JSONResponse({"nodes": counts})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.backend.client.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.backend.client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(name: str, membership: Membership, secret: bytes,
               credentials: dict[str, str], admin_token: str | None = None,
               domains: tuple[str, ...] = ()) -> S3App:
    """The gateway app; ``membership`` must already be started. ``domains``: base domains
    for virtual-hosted-style addressing (none: path-style only)."""
    backend = Backend(name, membership, NodeClient(secret))
    return S3App(backend, credentials, secret, admin_token, domains)
