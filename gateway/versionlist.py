"""ListObjectVersions: every version and delete marker, keys in order, newest first.

Two quorum scans of the bucket's partition merge by key (so a listing sees every
acknowledged write, like ListObjects): ``v/`` holds the versions written while the
bucket had versioning configured, ``o/`` the legacy null versions written before, which
have no ``v/`` record yet (gateway/versioning.py). A key's first version in the merged
order is its latest (IsLatest), unless the page starts inside the key's versions after
a version-id-marker.

Markers are S3's: ``key-marker`` alone resumes after every version of that key,
``key-marker`` with ``version-id-marker`` after that version of it; a key-marker that is
a common prefix resumes after everything under it. With a delimiter, keys under a
common prefix fold into one entry and the scans jump past the prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.responses import Response

from gateway.errors import S3Error
from gateway.listing import list_params
from gateway.records import object_prefix, prefix_end
from gateway.versioning import (
    NULL,
    VERSION_ID,
    key_versions,
    split_version_key,
    version_key,
    version_prefix,
)
from gateway.xmlio import Node, iso8601, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

MAX_KEYS = 1000
OWNER = [("ID", "shoal"), ("DisplayName", "shoal")]

Version = tuple[str, dict[str, Any] | None, bool]  # (key or common prefix, record, latest)


def _past(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def _merged(req: S3Request, o_start: str, v_start: str, end: str | None
                  ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(key, record) of every version with a key below ``end``, in listing order."""
    bucket, catalog = req.bucket, req.catalog
    o_base, v_base = object_prefix(bucket), version_prefix(bucket)
    o_end = o_base + end if end is not None else prefix_end(o_base)
    v_end = v_base + end if end is not None else prefix_end(v_base)

    async def legacy() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for meta_key, rec in catalog.scan(bucket, o_start, o_end):
            if rec.get("version_hlc") is None:  # live and never versioned
                yield meta_key[len(o_base):], rec

    async def versions() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for meta_key, rec in catalog.scan(bucket, v_start, v_end):
            yield split_version_key(bucket, meta_key)[0], rec

    async with aclosing(legacy()) as olds, aclosing(versions()) as news:
        old, new = await anext(olds, None), await anext(news, None)
        while old is not None or new is not None:
            # A legacy version has no v/ records beside it; on a tie it goes first.
            if new is None or (old is not None and old[0] <= new[0]):
                yield old  # type: ignore[misc]
                old = await anext(olds, None)
            else:
                yield new
                new = await anext(news, None)


async def _entries(req: S3Request, prefix: str, delimiter: str, o_start: str, v_start: str,
                   seen: str | None) -> AsyncIterator[Version]:
    """Versions and common prefixes in order; ``seen``: a key whose latest is not here."""
    end = _past(prefix) if prefix else None
    o_base, v_base = object_prefix(req.bucket), version_prefix(req.bucket)
    while True:
        jumped = False
        async with aclosing(_merged(req, o_start, v_start, end)) as merged:
            async for key, rec in merged:
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    yield common, None, False
                    o_start, v_start = o_base + _past(common), v_base + _past(common)
                    jumped = True
                    break
                yield key, rec, key != seen
                seen = key
        if not jumped:
            return


async def _starts(req: S3Request, prefix: str, delimiter: str, key_marker: str,
                  version_marker: str) -> tuple[str, str, str | None]:
    """(o/ start, v/ start, key already shown in part) for the markers given."""
    bucket = req.bucket
    o_base, v_base = object_prefix(bucket), version_prefix(bucket)
    o_start, v_start, seen = o_base + prefix, v_base + prefix, None
    if not key_marker:
        return o_start, v_start, seen
    if delimiter and key_marker.startswith(prefix) and key_marker.endswith(delimiter):
        after = (o_base + _past(key_marker), v_base + _past(key_marker))
    else:
        after = (o_base + key_marker + "\x00", v_base + key_marker + "\x01")
        suffix = version_marker if VERSION_ID.match(version_marker) else None
        if version_marker == NULL:
            async for vkey, _ in key_versions(req.catalog, bucket, key_marker):
                if vkey.endswith(NULL):
                    suffix = vkey.rpartition("\x00")[2]
                    break
        if suffix is not None:
            after = (o_base + key_marker + "\x00", version_key(bucket, key_marker, suffix)
                     + "\x00")
            seen = key_marker
    return max(o_start, after[0]), max(v_start, after[1]), seen


def _params(req: S3Request) -> tuple[str, str, int, bool]:
    q = req.query
    if q.get("version-id-marker") and not q.get("key-marker"):
        raise S3Error("InvalidArgument", "A version-id marker cannot be specified without a "
                      "key marker.")
    return list_params(req)


def _entry(key: str, rec: dict[str, Any], latest: bool, enc: Any) -> Node:
    head: list[Node] = [("Key", enc(key)), ("VersionId", rec.get("version_id", NULL)),
                        ("IsLatest", latest),
                        ("LastModified", iso8601(rec.get("last_modified", 0.0)))]
    if rec.get("delete_marker"):
        return ("DeleteMarker", [*head, ("Owner", OWNER)])
    fields = [*head, ("ETag", f'"{rec.get("etag", "")}"'), ("Size", rec.get("size", 0))]
    if rec.get("checksum"):
        fields.append(("ChecksumAlgorithm", rec["checksum"][0]))
    return ("Version", [*fields, ("StorageClass", "STANDARD"), ("Owner", OWNER)])


async def list_object_versions(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    prefix, delimiter, max_keys, url = _params(req)
    key_marker = req.query.get("key-marker", "")
    version_marker = req.query.get("version-id-marker", "")
    o_start, v_start, seen = await _starts(req, prefix, delimiter, key_marker, version_marker)
    page: list[Version] = []
    truncated = False
    if max_keys:
        async with aclosing(_entries(req, prefix, delimiter, o_start, v_start, seen)) as found:
            async for item in found:
                if len(page) == max_keys:
                    truncated = True
                    break
                page.append(item)

    def enc(value: str) -> str:
        return quote(value, safe="/") if url else value

    fields: list[Node] = [("Name", req.bucket), ("Prefix", enc(prefix)),
                          ("KeyMarker", enc(key_marker)), ("VersionIdMarker", version_marker)]
    if truncated:
        key, rec, _ = page[-1]
        fields.append(("NextKeyMarker", enc(key)))
        if rec is not None:
            fields.append(("NextVersionIdMarker", rec.get("version_id", NULL)))
    fields.append(("MaxKeys", max_keys))
    if delimiter:
        fields.append(("Delimiter", enc(delimiter)))
    if url:
        fields.append(("EncodingType", "url"))
    fields.append(("IsTruncated", truncated))
    fields += [_entry(key, rec, latest, enc) for key, rec, latest in page if rec is not None]
    fields += [("CommonPrefixes", [("Prefix", enc(key))]) for key, rec, _ in page
               if rec is None]
    return xml_response("ListVersionsResult", fields)
