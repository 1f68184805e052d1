"""Object and bucket tagging: tag sets checked as S3 checks them, kept in the records.

Object tags belong to one version and live in its record: a tag change rewrites that
version's records in place (``versioning.rewrite``), stamped one logical tick after the
record, so a new version written concurrently still wins. Tags given on upload
(``x-amz-tagging``, URL-query encoded) go into the new record; CopyObject copies the
source's tags unless ``x-amz-tagging-directive: REPLACE``. Bucket tags live in the
bucket record.

Limits (S3's): 10 tags per object, 50 per bucket, keys 1-128 and values 0-256
characters (letters, digits, white space and ``_ . : / = + - @``), keys unique and not
starting with ``aws:``. Anything else is InvalidTag (or MalformedXML for bad documents)
and changes nothing.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.responses import Response

from gateway import versioning
from gateway.errors import S3Error
from gateway.xmlio import Node, child_text, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 256
_PUNCTUATION = frozenset("_.:/=+-@")


def _allowed(text: str) -> bool:
    return all(c in _PUNCTUATION or unicodedata.category(c)[0] in "LNZ" for c in text)


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidTag", message)


def check_tags(pairs: list[tuple[str, str]], limit: int) -> dict[str, str]:
    """The tag set of ``pairs`` as a dict, or InvalidTag."""
    if len(pairs) > limit:
        what = "Object tags" if limit == MAX_OBJECT_TAGS else "Bucket tag count"
        raise _invalid(f"{what} cannot be greater than {limit}")
    tags: dict[str, str] = {}
    for key, value in pairs:
        if len(key) > MAX_KEY_CHARS:
            raise _invalid(f"The TagKey you have provided is too long, max {MAX_KEY_CHARS}")
        if len(value) > MAX_VALUE_CHARS:
            raise _invalid(f"The TagValue you have provided is too long, max {MAX_VALUE_CHARS}")
        if not key or not _allowed(key):
            raise _invalid("The TagKey you have provided is invalid")
        if not _allowed(value):
            raise _invalid("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise _invalid("Your TagKey cannot be prefixed with aws:")
        if key in tags:
            raise _invalid("Cannot provide multiple Tags with the same key")
        tags[key] = value
    return tags


def parse_tagging(body: bytes, limit: int) -> dict[str, str]:
    """A ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…`` document."""
    root = parse_xml(body)
    tag_set = root.find("TagSet")
    if root.tag != "Tagging" or tag_set is None:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema")
    pairs = []
    for tag in tag_set:
        key, value = child_text(tag, "Key"), child_text(tag, "Value")
        if tag.tag != "Tag" or key is None or value is None:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did "
                          "not validate against our published schema")
        pairs.append((key, value))
    return check_tags(pairs, limit)


def header_tags(req: S3Request) -> dict[str, str]:
    """Tags of ``x-amz-tagging`` (``k1=v1&k2=v2``), checked; {} when absent."""
    value = req.headers.get("x-amz-tagging")
    if not value:
        return {}
    return check_tags(parse_qsl(value, keep_blank_values=True), MAX_OBJECT_TAGS)


def copy_tags(req: S3Request, source_tags: dict[str, str]) -> dict[str, str]:
    """The tags of a copy, as ``x-amz-tagging-directive`` (COPY by default) says."""
    directive = req.headers.get("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown tagging directive.",
                      ArgumentName="x-amz-tagging-directive", ArgumentValue=directive)
    return header_tags(req) if directive == "REPLACE" else dict(source_tags)


def _tag_set(tags: dict[str, str]) -> list[Node]:
    return [("TagSet", [("Tag", [("Key", k), ("Value", v)]) for k, v in tags.items()])]


# Object tagging -----------------------------------------------------------------------


async def get_object_tagging(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    found = await versioning.resolve(req, req.bucket, req.key, req.query.get("versionId"))
    headers = versioning.version_header(bucket, found.rec.get("version_id", versioning.NULL))
    return xml_response("Tagging", _tag_set(found.rec.get("tags") or {}), headers=headers)


async def _set_object_tags(req: S3Request, tags: dict[str, str]) -> dict[str, str]:
    bucket = await req.catalog.bucket(req.bucket)
    found = await versioning.resolve(req, req.bucket, req.key, req.query.get("versionId"),
                                     need_current=True)
    await versioning.rewrite(req, found, tags=tags)
    return versioning.version_header(bucket, found.rec.get("version_id", versioning.NULL))


async def put_object_tagging(req: S3Request) -> Response:
    tags = parse_tagging(await req.request.body(), MAX_OBJECT_TAGS)
    return Response(status_code=200, headers=await _set_object_tags(req, tags))


async def delete_object_tagging(req: S3Request) -> Response:
    return Response(status_code=204, headers=await _set_object_tags(req, {}))


# Bucket tagging -----------------------------------------------------------------------


async def _set_bucket_tags(req: S3Request, tags: dict[str, str]) -> None:
    await req.catalog.update_bucket(req.bucket, tags=tags)


async def put_bucket_tagging(req: S3Request) -> Response:
    await _set_bucket_tags(req, parse_tagging(await req.request.body(), MAX_BUCKET_TAGS))
    return Response(status_code=204)


async def get_bucket_tagging(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    if not bucket.tags:
        raise S3Error("NoSuchTagSet", "The TagSet does not exist", BucketName=req.bucket)
    return xml_response("Tagging", _tag_set(bucket.tags))


async def delete_bucket_tagging(req: S3Request) -> Response:
    await _set_bucket_tags(req, {})
    return Response(status_code=204)
