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
from gateway import admin, buckets, encryption, limits, listing, multipart, objects
from gateway.access import authorize
from gateway.backend import Backend
from gateway.catalog import Catalog
from gateway.errors import S3Error, render
from gateway.keys import Principal, credential_key
from gateway.router import resolve
from gateway.security import Security
from gateway.sigv4 import AuthResult, verify

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
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "CopyObject": objects.copy_object,
    "CreateMultipartUpload": multipart.create_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_upload,
    "AbortMultipartUpload": multipart.abort_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
    "GetBucketEncryption": encryption.get_bucket_encryption,
    "PutBucketEncryption": encryption.put_bucket_encryption,
    "DeleteBucketEncryption": encryption.delete_bucket_encryption,
}


def _has_unread_body(request: Request) -> bool:
    declared = request.headers.get("content-length", "0") not in ("", "0") or (
        "transfer-encoding" in request.headers)
    return declared and not getattr(request, "_stream_consumed", False)


def split_path(path: str) -> tuple[str, str]:
    """Path-style addressing: /bucket/key (the key may contain any characters, '/' too)."""
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


class S3App:
    def __init__(self, backend: Backend, credentials: dict[str, str], secret: bytes,
                 admin_token: str | None = None) -> None:
        self.backend = backend
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
        except Exception:
            log.exception("internal error on %s %s", scope["method"], scope.get("path"))
            response = render(S3Error("InternalError", "We encountered an internal error. "
                                      "Please try again."), scope.get("path", ""), request_id)
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
        bucket, key = split_path(scope["path"])  # the server percent-decoded it (UTF-8)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise S3Error("KeyTooLongError", "Your key is too long")
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        keys = self.security.keys
        await keys.prefetch(credential_key(scope["headers"], scope["query_string"]))
        auth = verify(
            scope["method"], scope.get("raw_path") or scope["path"].encode(),
            scope["query_string"], scope["headers"], keys.secret_for, time.time(),
        )
        if auth is None:
            raise S3Error("AccessDenied", "Access Denied")
        operation = resolve(scope["method"], bucket, key, query, request.headers)
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
               credentials: dict[str, str], admin_token: str | None = None) -> S3App:
    """The gateway app; ``membership`` must already be started."""
    backend = Backend(name, membership, NodeClient(secret))
    return S3App(backend, credentials, secret, admin_token)
