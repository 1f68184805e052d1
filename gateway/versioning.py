"""Object versioning: version ids, version records, delete markers, reads by versionId.

Layout, all in the bucket's partition:

    o/{bucket}/{key}              the current version: what GET without versionId serves
    v/{bucket}/{key}\\0{suffix}    one record per version written while the bucket had
                                  versioning configured (Enabled or Suspended)

Suffixes sort newest first within a key. A version id (other than "null") is 16 hex
digits of the inverted creation stamp (HLC milliseconds and logical tick) followed by 16
random hex digits, and is its own suffix; the null version's suffix is the same 16
digits followed by ``null``. So a version is found by id with one point read.

Invariants:

* A write in a versioned bucket commits the version's ``v/`` record and its ``o/`` copy
  in one metadata batch (atomic on every owner). Each version has its own key, so
  concurrent PUTs of one key all survive as versions, as S3 promises; ``o/`` converges by
  LWW on the newest stamp, which is also the key's first ``v/`` record. (Moving the old
  current record to ``v/`` on overwrite would be a read-modify-write that loses one of
  two concurrent versions: nodes have no conditional put.)
* Rewrites that make no new version (tags, promoting the previous version when the
  current one is deleted by id) stamp the record with its own stamp plus one logical
  tick, not "now": a concurrent new version, stamped later, still wins.
* A record written while the bucket was unversioned has ``version_hlc`` None and no
  ``v/`` record (a "legacy" null version). The first versioned write to its key archives
  it to ``v/`` in the same batch (Enabled) or replaces it (Suspended: it is the null
  version). ListObjectVersions shows legacy versions from ``o/``.
* A delete marker in ``o/`` is a tombstone (``deleted``) with ``delete_marker`` set, so
  every reader of current records (GET, HEAD, listings, copies) sees no object; in
  ``v/`` it is a live record, because ``deleted`` there means "removed for good".
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.responses import Response

from gateway.catalog import Catalog
from gateway.errors import S3Error
from gateway.records import (
    SCHEMA,
    BucketRecord,
    ObjectRecord,
    object_key,
    prefix_end,
)
from gateway.xmlio import child_text, http_date, parse_xml, xml_response

if TYPE_CHECKING:
    from cluster.hlc import HybridClock
    from gateway.app import S3Request

VERSION_ID = re.compile(r"^[0-9a-f]{32}$")
NULL = "null"
_MASK = (1 << 64) - 1

Item = tuple[str, dict[str, Any]]


class HeaderedError(S3Error):
    """An S3 error whose response also carries headers (x-amz-delete-marker, Allow...)."""

    def __init__(self, code: str, message: str, headers: dict[str, str], **fields: str) -> None:
        super().__init__(code, message, **fields)
        self.headers = headers


# Keys and ids ------------------------------------------------------------------------


def _inverted(stamp: list) -> str:
    tick = (int(stamp[0]) << 16) | min(int(stamp[1]), 0xFFFF)
    return f"{_MASK - tick:016x}"


def new_version_id(stamp: list) -> str:
    """A fresh version id that sorts before every id made from an older stamp."""
    return _inverted(stamp) + secrets.token_hex(8)


def version_prefix(bucket: str, key: str | None = None) -> str:
    """All version records of a bucket, or of one key."""
    return f"v/{bucket}/" if key is None else f"v/{bucket}/{key}\x00"


def version_key(bucket: str, key: str, suffix: str) -> str:
    return f"v/{bucket}/{key}\x00{suffix}"


def split_version_key(bucket: str, meta_key: str) -> tuple[str, str]:
    """(object key, suffix) of a ``v/`` record key (object keys never contain NUL)."""
    key, _, suffix = meta_key[len(version_prefix(bucket)):].rpartition("\x00")
    return key, suffix


def suffix_of(rec: dict[str, Any]) -> str | None:
    """The ``v/`` suffix of a version record; None for a legacy (unversioned) record."""
    stamp = rec.get("version_hlc")
    if stamp is None:
        return None
    vid = rec.get("version_id", NULL)
    return vid if vid != NULL else _inverted(stamp) + NULL


def is_version(rec: dict[str, Any] | None) -> bool:
    """True for an ``o/`` record that is a version (an object or a delete marker)."""
    return rec is not None and (not rec.get("deleted") or bool(rec.get("delete_marker")))


def bumped(stamp: list, clock: HybridClock) -> list:
    """The smallest stamp after ``stamp`` (one logical tick), for in-place rewrites."""
    new = [int(stamp[0]), int(stamp[1]) + 1, clock.origin]
    clock.observe(new)  # our next fresh stamp orders after this one
    return new


def tombstone(req: S3Request, rec: dict[str, Any]) -> dict[str, Any]:
    """A tombstone that wins over ``rec`` whatever clock stamped it."""
    req.backend.clock.observe(rec["hlc"])
    return {"hlc": req.catalog.stamp(), "deleted": True, "v": SCHEMA}


def check_version_id(version_id: str) -> None:
    if version_id != NULL and not VERSION_ID.match(version_id):
        raise S3Error("InvalidArgument", "Invalid version id specified",
                      ArgumentName="versionId", ArgumentValue=version_id)


def source_version(copy_source: str) -> str | None:
    """The ``versionId`` of an x-amz-copy-source header, None when it names none."""
    _, sep, query = copy_source.partition("?")
    return dict(parse_qsl(query, keep_blank_values=True)).get("versionId") if sep else None


def marker_headers(rec: dict[str, Any]) -> dict[str, str]:
    return {"x-amz-delete-marker": "true", "x-amz-version-id": rec.get("version_id", NULL)}


def version_header(bucket: BucketRecord, version_id: str) -> dict[str, str]:
    """``x-amz-version-id`` of an answer about one version: sent once the bucket has had
    versioning, or for a version that is not the null one."""
    return {"x-amz-version-id": version_id} if bucket.versioning or version_id != NULL else {}


def read_headers(bucket: BucketRecord, rec: ObjectRecord) -> dict[str, str]:
    """Version and tag-count headers of GET and HEAD."""
    out = version_header(bucket, rec.version_id)
    if rec.tags:
        out["x-amz-tagging-count"] = str(len(rec.tags))
    return out


async def key_versions(catalog: Catalog, bucket: str, key: str
                       ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Live ``v/`` records of one key, newest first, as scans give them: without the
    ``inline`` body, so a record to serve or write back must be read again by key."""
    prefix = version_prefix(bucket, key)
    async for item in catalog.scan(bucket, prefix, prefix_end(prefix)):
        yield item


# Finding a version ---------------------------------------------------------------------


@dataclass
class Located:
    bucket: str
    key: str
    rec: dict[str, Any]  # the version's record
    vkey: str | None  # its v/ key; None for a legacy null version (only in o/)
    current: dict[str, Any] | None  # the o/ record as read, when it was read

    @property
    def is_current(self) -> bool:
        return is_version(self.current) and (
            self.current.get("version_id", NULL) == self.rec.get("version_id", NULL))  # type: ignore[union-attr]


def _vkey(bucket: str, key: str, rec: dict[str, Any]) -> str | None:
    suffix = suffix_of(rec)
    return None if suffix is None else version_key(bucket, key, suffix)


async def find(req: S3Request, bucket: str, key: str, version_id: str,
               need_current: bool = False) -> Located | None:
    """The version ``version_id`` of ``key`` (a delete marker too), or None if absent."""
    catalog = req.catalog
    okey = object_key(bucket, key)
    if version_id == NULL:
        cur = await catalog.get(bucket, okey)
        if is_version(cur) and cur.get("version_id", NULL) == NULL:  # type: ignore[union-attr]
            return Located(bucket, key, cur, _vkey(bucket, key, cur), cur)  # type: ignore[arg-type]
        async for vkey, _ in key_versions(catalog, bucket, key):
            if vkey.endswith(NULL):
                rec = await catalog.get(bucket, vkey)  # the whole record, body included
                if rec is None or rec.get("deleted"):
                    return None
                return Located(bucket, key, rec, vkey, cur)
        return None
    if not VERSION_ID.match(version_id):
        return None
    vkey = version_key(bucket, key, version_id)
    if need_current:
        cur, rec = await asyncio.gather(catalog.get(bucket, okey), catalog.get(bucket, vkey))
    else:
        cur, rec = None, await catalog.get(bucket, vkey)
    if rec is None or rec.get("deleted"):
        return None
    return Located(bucket, key, rec, vkey, cur)


async def resolve(req: S3Request, bucket: str, key: str, version_id: str | None,
                  need_current: bool = False) -> Located:
    """The object version a read names: NoSuchKey, NoSuchVersion, or 405 on a marker."""
    if version_id is None:
        cur = await req.catalog.get(bucket, object_key(bucket, key))
        if not is_version(cur):
            raise S3Error("NoSuchKey", "The specified key does not exist.", Key=key)
        if cur.get("delete_marker"):  # type: ignore[union-attr]
            raise HeaderedError("NoSuchKey", "The specified key does not exist.",
                                marker_headers(cur), Key=key)  # type: ignore[arg-type]
        return Located(bucket, key, cur, _vkey(bucket, key, cur), cur)  # type: ignore[arg-type]
    check_version_id(version_id)
    found = await find(req, bucket, key, version_id, need_current)
    if found is None:
        raise S3Error("NoSuchVersion", "The specified version does not exist.", Key=key,
                      VersionId=version_id)
    if found.rec.get("delete_marker"):
        headers = {**marker_headers(found.rec), "Allow": "DELETE",
                   "Last-Modified": http_date(found.rec.get("last_modified", 0.0))}
        raise HeaderedError("MethodNotAllowed", "The specified method is not allowed "
                            "against this resource.", headers, Method=req.request.method,
                            ResourceType="DeleteMarker")
    return found


async def read(req: S3Request) -> ObjectRecord:
    """The record GET and HEAD serve (``?versionId=`` honoured)."""
    found = await resolve(req, req.bucket, req.key, req.query.get("versionId"))
    return ObjectRecord.from_dict(found.rec)


async def copy_source(req: S3Request, bucket: str, key: str
                      ) -> tuple[ObjectRecord, dict[str, str]]:
    """The source version of a copy and the x-amz-copy-source-version-id header."""
    src_bucket = await req.catalog.bucket(bucket)
    version_id = source_version(req.headers["x-amz-copy-source"])
    try:
        found = await resolve(req, bucket, key, version_id)
    except HeaderedError as err:
        if err.code != "MethodNotAllowed":
            raise
        raise S3Error("InvalidRequest", "The source of a copy request may not specifically "
                      "refer to a delete marker by version id.") from None
    rec = ObjectRecord.from_dict(found.rec)
    shown = src_bucket.versioning or version_id is not None
    return rec, ({"x-amz-copy-source-version-id": rec.version_id} if shown else {})


async def rewrite(req: S3Request, found: Located, **changes: Any) -> None:
    """Change fields of one version in place: its ``v/`` record and, if current, ``o/``."""
    clock = req.backend.clock
    items: list[Item] = []
    if found.vkey is not None:
        items.append((found.vkey, {**found.rec, **changes, "deleted": False,
                                   "hlc": bumped(found.rec["hlc"], clock)}))
    if found.is_current:
        cur = found.current
        items.append((object_key(found.bucket, found.key),
                      {**cur, **changes, "hlc": bumped(cur["hlc"], clock)}))  # type: ignore[index]
    await req.catalog.put(found.bucket, items)


# Writing versions ----------------------------------------------------------------------


async def _new_version(req: S3Request, bucket: BucketRecord, rec: ObjectRecord) -> list[Item]:
    """Stamp ``rec`` as a new version; the writes that make it current: its ``v/`` and
    ``o/`` records, the archive of a legacy null version (Enabled), or tombstones for
    the null version it replaces (Suspended)."""
    catalog = req.catalog
    rec.version_hlc = list(rec.hlc)
    rec.version_id = new_version_id(rec.hlc) if bucket.versioning == "Enabled" else NULL
    items: list[Item] = []
    if bucket.versioning == "Enabled":
        cur = await catalog.get(rec.bucket, object_key(rec.bucket, rec.key))
        if is_version(cur) and cur.get("version_hlc") is None:  # type: ignore[union-attr]
            archived = {**cur, "version_hlc": cur["hlc"]}  # type: ignore[dict-item,index]
            items.append((version_key(rec.bucket, rec.key, suffix_of(archived)), archived))  # type: ignore[arg-type]
    else:
        async for vkey, old in key_versions(catalog, rec.bucket, rec.key):
            if vkey.endswith(NULL):
                items.append((vkey, tombstone(req, old)))
    body = rec.to_dict()
    items.append((version_key(rec.bucket, rec.key, suffix_of(body)), body))  # type: ignore[arg-type]
    items.append((object_key(rec.bucket, rec.key), {**body, "deleted": rec.delete_marker}))
    return items


async def commit(req: S3Request, rec: ObjectRecord, bucket: BucketRecord | None = None,
                 extra: list[Item] | None = None) -> dict[str, str]:
    """Make ``rec`` the current version of its key as the bucket's versioning says; the
    response headers to send (x-amz-version-id). ``extra`` commits in the same batch."""
    if bucket is None:
        bucket = await req.catalog.bucket(rec.bucket)
    rec.delete_marker = rec.deleted = False
    if not bucket.versioning:
        rec.version_id, rec.version_hlc = NULL, None
        await req.catalog.put_object(rec, extra)
        return {}
    items = await _new_version(req, bucket, rec)
    await req.catalog.put(rec.bucket, [*items, *(extra or [])])
    return {"x-amz-version-id": rec.version_id}


async def _successor(req: S3Request, found: Located) -> dict[str, Any]:
    """The ``o/`` record once the current version ``found`` is gone: the next version,
    or a tombstone when none is left."""
    cur = found.current
    stamp = bumped(cur["hlc"], req.backend.clock)  # type: ignore[index]
    async for vkey, _ in key_versions(req.catalog, found.bucket, found.key):
        rec = await req.catalog.get(found.bucket, vkey) if vkey != found.vkey else None
        if rec is not None and not rec.get("deleted"):  # body included, unlike scans
            return {**rec, "hlc": stamp, "deleted": bool(rec.get("delete_marker"))}
    return {"bucket": found.bucket, "key": found.key, "hlc": stamp, "deleted": True,
            "v": SCHEMA}


async def delete(req: S3Request, bucket: BucketRecord, key: str, version_id: str | None
                 ) -> tuple[str | None, bool]:
    """DELETE as S3 does it; returns (version id to report, whether it is a marker).

    Without a version id: an unversioned bucket drops the object; a versioned one gets
    a delete marker (a null one when Suspended, replacing the null version). With one:
    that version is removed for good (absent ones too: S3 answers 204) and, if it was
    current, the next newest version becomes current.
    """
    catalog = req.catalog
    if version_id is None:
        if not bucket.versioning:
            await catalog.delete_object(bucket.name, key)
            return None, False
        marker = ObjectRecord(bucket=bucket.name, key=key, hlc=catalog.stamp(),
                              last_modified=time.time(), delete_marker=True)
        await catalog.put(bucket.name, await _new_version(req, bucket, marker))
        return marker.version_id, True
    check_version_id(version_id)
    found = await find(req, bucket.name, key, version_id, need_current=True)
    if found is None:
        return version_id, False
    items: list[Item] = []
    if found.vkey is not None:
        items.append((found.vkey, tombstone(req, found.rec)))
    if found.is_current:
        items.append((object_key(bucket.name, key), await _successor(req, found)))
    await catalog.put(bucket.name, items)
    return version_id, bool(found.rec.get("delete_marker"))


# Bucket versioning configuration -------------------------------------------------------

_MALFORMED = ("The XML you provided was not well-formed or did not validate against our "
              "published schema")


async def put_bucket_versioning(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    root = parse_xml(await req.request.body())
    status, mfa = child_text(root, "Status"), child_text(root, "MfaDelete")
    if (root.tag != "VersioningConfiguration" or status not in (None, "Enabled", "Suspended")
            or mfa not in (None, "Enabled", "Disabled")):
        raise S3Error("MalformedXML", _MALFORMED)
    if mfa == "Enabled" or "x-amz-mfa" in req.headers:
        raise S3Error("NotImplemented", "MFA Delete is not supported by Shoal")
    if status is not None and status != bucket.versioning:
        await req.catalog.update_bucket(req.bucket, versioning=status)
    return Response(status_code=200)


async def get_bucket_versioning(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    fields = [("Status", bucket.versioning)] if bucket.versioning else []
    return xml_response("VersioningConfiguration", fields)
