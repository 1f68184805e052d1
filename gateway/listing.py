"""ListObjects (v1) and ListObjectsV2: prefix, delimiter, markers, continuation tokens.

Listings are quorum reads like every other read, so a key is listed as soon as its PUT
was acknowledged. With a delimiter, every key under a common prefix folds into one
entry and the scan jumps past the whole prefix instead of reading it.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.responses import Response

from gateway.errors import S3Error
from gateway.records import object_prefix
from gateway.xmlio import Raw, iso8601, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

MAX_KEYS = 1000
# What a listing entry shows: owners send only these fields of each record (a record
# also holds blocks, policy, headers...; decoding them was most of a listing's CPU).
ENTRY_FIELDS = ["bucket", "key", "size", "etag", "last_modified", "checksum"]
_PLAIN = re.compile(r"[A-Za-z0-9_.~/-]*")  # keys that URL-encoding leaves as they are


class Entry(NamedTuple):
    """What a listing shows of one object (a record would cost 3.6 µs per entry)."""
    key: str
    size: int
    etag: str
    last_modified: float
    checksum: list | None

    @classmethod
    def of(cls, key: str, rec: dict[str, Any]) -> Entry:
        return cls(key, rec.get("size", 0), rec.get("etag", ""), rec.get("last_modified", 0.0),
                   rec.get("checksum"))


@dataclass
class Page:
    entries: list[Entry | str]  # objects, or common prefixes (str)
    truncated: bool
    resume: str  # the key to resume from (inclusive), when truncated


def _after(key: str) -> str:
    return key + "\x00"


def _past(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def list_page(req: S3Request, prefix: str, delimiter: str, start: str,
                    max_keys: int) -> Page:
    """Up to ``max_keys`` entries with keys >= ``start`` under ``prefix``."""
    base = object_prefix(req.bucket)
    start = max(start, prefix)
    end = _past(prefix) if prefix else None
    entries: list[Entry | str] = []
    while True:
        jumped = False
        # One record past max_keys decides IsTruncated in the same scan: a scan page of
        # exactly max_keys would cost a second full page just to see that record.
        page = max_keys - len(entries) + 1
        async for meta_key, rec in req.catalog.objects(req.bucket, start, end, page,
                                                        ENTRY_FIELDS):
            key = meta_key[len(base):]
            if len(entries) == max_keys:
                return Page(entries, True, key)
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                entries.append(Entry.of(key, rec))
                continue
            common = key[: cut + len(delimiter)]
            entries.append(common)
            start, jumped = _past(common), True
            break
        if not jumped:
            return Page(entries, False, "")
        if len(entries) == max_keys:
            # One more look decides IsTruncated without returning a partial entry.
            async for meta_key, _ in req.catalog.objects(req.bucket, start, end, 1,
                                                         ENTRY_FIELDS):
                return Page(entries, True, meta_key[len(base):])
            return Page(entries, False, "")


def list_params(req: S3Request) -> tuple[str, str, int, bool]:
    """(prefix, delimiter, max-keys capped at 1000, url encoding) of a listing request."""
    q = req.query
    try:
        max_keys = int(q.get("max-keys", MAX_KEYS))
    except ValueError:
        raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer "
                      "range") from None
    if max_keys < 0:
        raise S3Error("InvalidArgument", "max-keys must be non-negative")
    encoding = q.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
    return q.get("prefix", ""), q.get("delimiter", ""), min(max_keys, MAX_KEYS), bool(encoding)


def _enc(value: str, url: bool) -> str:
    return quote(value, safe="/") if url and not _PLAIN.fullmatch(value) else value


def _contents(page: Page, url: bool, owner: bool) -> list:
    tail = "<Owner><ID>shoal</ID><DisplayName>shoal</DisplayName></Owner>" if owner else ""
    out: list = [_content(e, url, tail) for e in page.entries if not isinstance(e, str)]
    out += [("CommonPrefixes", [("Prefix", _enc(e, url))]) for e in page.entries
            if isinstance(e, str)]
    return out


def _content(e: Entry, url: bool, tail: str) -> Raw:
    checksum = (f"<ChecksumAlgorithm>{e.checksum[0]}</ChecksumAlgorithm>" if e.checksum
                else "")
    return Raw(f"<Contents><Key>{escape(_enc(e.key, url))}</Key>"
               f"<LastModified>{iso8601(e.last_modified)}</LastModified>"
               f"<ETag>\"{escape(e.etag)}\"</ETag><Size>{e.size}</Size>"
               f"<StorageClass>STANDARD</StorageClass>{checksum}{tail}</Contents>")


async def list_objects_v2(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    prefix, delimiter, max_keys, url = list_params(req)
    token = req.query.get("continuation-token")
    start = _after(req.query.get("start-after", ""))
    if token is not None:
        try:
            start = base64.urlsafe_b64decode(token.encode()).decode()
        except ValueError:
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect"
                          ) from None
    page = await list_page(req, prefix, delimiter, start, max_keys) if max_keys else Page(
        [], False, "")
    fields: list = [("Name", req.bucket), ("Prefix", _enc(prefix, url))]
    if delimiter:
        fields.append(("Delimiter", _enc(delimiter, url)))
    fields += [("MaxKeys", max_keys), ("KeyCount", len(page.entries))]
    if url:
        fields.append(("EncodingType", "url"))
    if token is not None:
        fields.append(("ContinuationToken", token))
    if "start-after" in req.query:
        fields.append(("StartAfter", _enc(req.query["start-after"], url)))
    fields.append(("IsTruncated", page.truncated))
    if page.truncated:
        next_token = base64.urlsafe_b64encode(page.resume.encode()).decode()
        fields.append(("NextContinuationToken", next_token))
    fields += _contents(page, url, req.query.get("fetch-owner") == "true")
    return xml_response("ListBucketResult", fields)


async def list_objects_v1(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    prefix, delimiter, max_keys, url = list_params(req)
    marker = req.query.get("marker", "")
    start = _after(marker)
    if delimiter and marker.endswith(delimiter) and marker.startswith(prefix):
        start = _past(marker)  # the marker was a common prefix: skip everything under it
    page = await list_page(req, prefix, delimiter, start, max_keys) if max_keys else Page(
        [], False, "")
    fields: list = [("Name", req.bucket), ("Prefix", _enc(prefix, url)),
                    ("Marker", _enc(marker, url)), ("MaxKeys", max_keys)]
    if delimiter:
        fields.append(("Delimiter", _enc(delimiter, url)))
    if url:
        fields.append(("EncodingType", "url"))
    fields.append(("IsTruncated", page.truncated))
    if page.truncated and delimiter and page.entries:
        last = page.entries[-1]
        fields.append(("NextMarker", _enc(last if isinstance(last, str) else last.key, url)))
    fields += _contents(page, url, True)
    return xml_response("ListBucketResult", fields)
