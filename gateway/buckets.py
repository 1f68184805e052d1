"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, location."""

from __future__ import annotations

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
    principal = req.principal
    entries = [
        ("Bucket", [("Name", b.name), ("CreationDate", iso8601(b.created))])
        for b in await req.catalog.buckets()
        if principal is not None and principal.allows(b.name, "read")
    ]
    return xml_response("ListAllMyBucketsResult", [("Owner", OWNER), ("Buckets", entries)])


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
    return Response(status_code=200, headers={"x-amz-bucket-region": "us-east-1"})


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
