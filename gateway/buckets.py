"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, location."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway.errors import S3Error
from gateway.xmlio import child_text, iso8601, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
OWNER = [("ID", "shoal"), ("DisplayName", "shoal")]
REGION = "us-east-1"  # Shoal has one region; S3 clients expect this one by default
MAX_BUCKETS = 10_000  # a page when a client pages (S3's default and largest)


def check_bucket_name(name: str) -> None:
    """S3's naming rules for new buckets (the strict, DNS-compatible set)."""
    bad = (
        not _NAME.match(name)
        or ".." in name or ".-" in name or "-." in name
        or name.startswith("xn--") or name.endswith("-s3alias")
    )
    if not bad:
        try:
            ipaddress.IPv4Address(name)
            bad = True
        except ValueError:
            pass
    if bad:
        raise S3Error("InvalidBucketName", "The specified bucket is not valid.", BucketName=name)


async def list_buckets(req: S3Request) -> Response:
    """Every bucket the key may read; paged, as S3 since 2024, when the client asks
    (max-buckets, continuation-token, prefix, bucket-region), else all in one answer."""
    limit, after, prefix, region = _paging(req.query)
    principal = req.principal
    names = sorted(
        (b.name, b.created) for b in await req.catalog.buckets()
        if principal is not None and principal.allows(b.name, "read")
        and b.name.startswith(prefix) and b.name > after and region in (None, REGION))
    page = names if limit is None else names[:limit]
    fields: list = [("Buckets", [
        ("Bucket", [("Name", name), ("CreationDate", iso8601(created)),
                    ("BucketRegion", REGION)]) for name, created in page]),
        ("Owner", OWNER)]
    if len(page) < len(names):
        fields.append(("ContinuationToken", _token(page[-1][0])))
    if prefix:
        fields.append(("Prefix", prefix))
    return xml_response("ListAllMyBucketsResult", fields)


def _paging(query: dict[str, str]) -> tuple[int | None, str, str, str | None]:
    """(page size or None for all, name to list after, prefix, region) of ListBuckets."""
    raw = query.get("max-buckets")
    token = query.get("continuation-token")
    paged = raw is not None or token is not None or "prefix" in query or "bucket-region" in query
    limit = MAX_BUCKETS if paged else None
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BUCKETS:
            raise S3Error("InvalidArgument", f"max-buckets must be an integer from 1 to "
                          f"{MAX_BUCKETS}", ArgumentName="max-buckets", ArgumentValue=raw)
        limit = int(raw)
    after = ""
    if token:
        try:
            after = base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
        except (binascii.Error, UnicodeError, ValueError):
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                          ArgumentName="continuation-token") from None
    return limit, after, query.get("prefix", ""), query.get("bucket-region")


def _token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


async def create_bucket(req: S3Request) -> Response:
    check_bucket_name(req.bucket)
    body = await req.request.body()  # a small XML document at most (CreateBucketConfiguration)
    if body.strip():
        root = parse_xml(body)
        if root.tag != "CreateBucketConfiguration":
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did "
                          "not validate against our published schema")
        child_text(root, "LocationConstraint")  # any region is accepted: Shoal has one
    policy = req.backend.default_policy()
    try:
        await req.catalog.create_bucket(req.bucket, policy.to_dict(), req.auth.access_key
                                        if req.auth else "")
    except S3Error as err:
        if err.code == "BucketAlreadyOwnedByYou" and not (
                req.principal and req.principal.allows(req.bucket, "owner")):
            raise S3Error("BucketAlreadyExists", "The requested bucket name is not available. "
                          "Please select a different name and try again.",
                          BucketName=req.bucket) from None
        raise
    if req.principal is not None and not req.principal.admin:
        # A stored key becomes the owner of the bucket it created (gateway/access.py).
        await req.security.keys.grant(req.principal.access_key, req.bucket, "owner")
    return Response(status_code=200, headers={"Location": f"/{req.bucket}"})


async def head_bucket(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    return Response(status_code=200, headers={"x-amz-bucket-region": REGION})


async def delete_bucket(req: S3Request) -> Response:
    await req.catalog.delete_bucket(req.bucket)
    return Response(status_code=204)


async def get_bucket_location(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>',
        media_type="application/xml",
    )
