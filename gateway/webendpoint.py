"""The website endpoint: anonymous GET/HEAD of a bucket as a static site, on its own port.

`shoal gateway --website-port P` binds a second listening socket in the same uvicorn
workers; ``Listeners`` sends each connection to the S3 app or to ``WebsiteApp`` by the
local port it arrived on. Both share one backend (membership, node pool, metadata).

What the endpoint serves, like S3's website endpoints:

* The bucket comes from the Host header when it is ``BUCKET.<website domain>``
  (default domain ``localhost``: browsers resolve ``*.localhost`` to loopback), else
  from the first path segment (``/BUCKET/key``).
* Only buckets with a website configuration are served (else 404
  NoSuchWebsiteConfiguration), and only keys the bucket policy lets anyone read
  (else 403 AccessDenied): the website endpoint never bypasses the policy.
* A path that is empty or ends in '/' serves its index document; ``/dir`` whose
  ``dir/<index>`` exists and is public is redirected (302) to ``/dir/``. A missing key
  serves the error document with status 404 (a refused one with 403) when it is
  configured and readable, else a short HTML error page.
* Only GET and HEAD (405 otherwise); Range works as on the S3 endpoint; CORS rules of
  the bucket apply. Errors are HTML, not S3 XML: browsers read this endpoint.
"""

from __future__ import annotations

import logging
import socket
import uuid
from html import escape
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from uvicorn.supervisors import Multiprocess

from gateway import cors, objects
from gateway.app import S3App, S3Request
from gateway.bucketconfig import cached_bucket
from gateway.bucketpolicy import allows_anonymous_read
from gateway.errors import S3Error
from gateway.vhost import split_request_path
from gateway.website import index_key

log = logging.getLogger(__name__)
DEFAULT_DOMAIN = "localhost"


def _error_page(err: S3Error, request_id: str) -> HTMLResponse:
    title = f"{err.status} {err.code}"
    fields = "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in err.fields.items())
    return HTMLResponse(
        f"<html><head><title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
        f"<ul><li>Code: {err.code}</li><li>Message: {escape(err.message)}</li>{fields}"
        f"<li>RequestId: {request_id}</li></ul></body></html>\n", status_code=err.status)


class WebsiteApp:
    def __init__(self, s3: S3App, domain: str = DEFAULT_DOMAIN) -> None:
        self.s3 = s3
        self.domain = domain.lower().strip(".")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = uuid.uuid4().hex[:16].upper()
        bucket = ""
        try:
            bucket, key, path_style = self.address(request)
            response = await self.serve(request, request_id, bucket, key, path_style)
        except S3Error as err:
            response = _error_page(err, request_id)
        except Exception:
            log.exception("website error on %s %s", scope["method"], scope.get("path"))
            response = _error_page(S3Error("InternalError", "We encountered an internal "
                                           "error. Please try again."), request_id)
        await cors.add_response_headers(self.s3.catalog, request, bucket, response)
        response.headers.setdefault("x-amz-request-id", request_id)
        response.headers.setdefault("server", "Shoal")
        await response(scope, receive, send)

    def address(self, request: Request) -> tuple[str, str, bool]:
        """(bucket, key, path-style?) of a website request."""
        host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if self.domain and host.endswith("." + self.domain):
            return host[: -len(self.domain) - 1], request.url.path.lstrip("/"), False
        bucket, key = split_request_path(request.url.path, None, ())  # path-style
        return bucket, key, True

    async def serve(self, request: Request, request_id: str, bucket: str, key: str,
                    path_style: bool) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against "
                          "this resource.", Method=request.method)
        if not bucket:
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName="")
        rec = await cached_bucket(self.s3.catalog, request, bucket)
        if not rec.website:
            raise S3Error("NoSuchWebsiteConfiguration", "The specified bucket does not have "
                          "a website configuration", BucketName=bucket)
        if path_style and request.url.path.rstrip("/") == f"/{bucket}" and \
                not request.url.path.endswith("/"):
            return RedirectResponse(f"/{bucket}/", status_code=302)  # relative links resolve
        target = index_key(rec.website, key)
        try:
            if not allows_anonymous_read(rec.access_policy, bucket, target):
                raise S3Error("AccessDenied", "Access Denied")
            return await self._object(request, request_id, bucket, target)
        except S3Error as err:
            if err.code in ("NoSuchKey", "AccessDenied") and target == key:
                folder = index_key(rec.website, key + "/")
                if allows_anonymous_read(rec.access_policy, bucket, folder) and \
                        await self._exists(bucket, folder):
                    prefix = f"/{bucket}/" if path_style else "/"
                    return RedirectResponse(prefix + key + "/", status_code=302)
            if err.code not in ("NoSuchKey", "AccessDenied"):
                raise
            return await self._error_document(request, request_id, rec, err)

    async def _exists(self, bucket: str, key: str) -> bool:
        try:
            await self.s3.catalog.object(bucket, key)
            return True
        except S3Error as err:
            if err.code == "NoSuchKey":
                return False
            raise

    async def _object(self, request: Request, request_id: str, bucket: str,
                      key: str) -> Response:
        operation = "HeadObject" if request.method == "HEAD" else "GetObject"
        req = S3Request(request, operation, bucket, key, {}, None, self.s3.catalog,
                        self.s3.backend, request_id, None, self.s3.security)
        if operation == "HeadObject":
            return await objects.head_object(req)
        return await objects.get_object(req)

    async def _error_document(self, request: Request, request_id: str, rec: Any,
                              err: S3Error) -> Response:
        """The bucket's error document with the error's status, else an HTML error page."""
        doc = rec.website.get("error")
        if not doc or not allows_anonymous_read(rec.access_policy, rec.name, doc):
            raise err
        # The error page is served whole: a Range meant for the missing key means nothing.
        scope = dict(request.scope)
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"range"]
        try:
            response = await self._object(Request(scope, request.receive), request_id,
                                          rec.name, doc)
        except S3Error as doc_err:
            if doc_err.code == "NoSuchKey":
                raise err from None
            raise
        response.status_code = err.status
        return response


class Listeners:
    """One ASGI app for both sockets: the website port goes to ``website``, others to S3."""

    def __init__(self, s3: S3App, website: WebsiteApp, website_port: int) -> None:
        self.s3 = s3
        self.website = website
        self.website_port = website_port

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        server = scope.get("server")
        if scope["type"] == "http" and server and server[1] == self.website_port:
            await self.website(scope, receive, send)
        else:  # S3 requests and the lifespan (the S3 app starts and stops the backend)
            await self.s3(scope, receive, send)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_on_ports(config: uvicorn.Config, host: str, ports: list[int]) -> None:
    """Run uvicorn (``config.workers`` processes) listening on every port of ``ports``."""
    sockets = [_bind(host, port) for port in ports]
    if config.workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)
