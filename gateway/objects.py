"""Object operations: PutObject, GetObject (ranges), HeadObject, DeleteObject(s), CopyObject.

Visibility rule: an object record is written only after every block reached its write
quorum and the body passed every digest the client declared; until then nothing is
visible, and on any failure the shards already written are removed in the background.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.responses import Response, StreamingResponse

from gateway import sse
from gateway.blockstore import BlockWriter, read_range
from gateway.body import UploadBody
from gateway.errors import S3Error
from gateway.records import BlockRef, ObjectRecord
from gateway.sealing import Sealer
from gateway.xmlio import child_text, http_date, iso8601, parse_xml, xml_response
from placement.policy import StoragePolicy

if TYPE_CHECKING:
    from gateway.app import S3Request

INLINE_MAX = 32 * 1024  # objects up to this size live inside their metadata record
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language",
                  "cache-control", "expires")
MAX_DELETE_KEYS = 1000


@dataclass
class StoredBody:
    size: int
    etag: str
    checksum: list | None
    inline: bytes | None = None
    blocks: list[BlockRef] = field(default_factory=list)


async def store_body(req: S3Request, policy: StoragePolicy, allow_inline: bool,
                     sealer: Sealer | None = None) -> StoredBody:
    """Read, verify and store a request body; nothing is left behind when it fails.
    With a ``sealer`` everything stored (inline body or blocks) is ciphertext."""
    body = UploadBody(req.request, req.auth)
    if allow_inline and body.length is not None and body.length <= INLINE_MAX:
        data = b"".join([c async for c in body.chunks()])
        body.verifier.update(memoryview(data))
        body.finish()
        inline = sealer.seal(data) if sealer else data
        return StoredBody(len(data), body.verifier.etag, _checksum(body), inline=inline)
    writer = BlockWriter(req.backend, policy, sealer)
    try:
        size = await writer.write(body.chunks(), body.verifier.update)
        body.finish()
    except BaseException:  # includes cancellation when the client goes away
        writer.abort()
        raise
    return StoredBody(size, body.verifier.etag, _checksum(body), blocks=writer.blocks)


def _checksum(body: UploadBody) -> list | None:
    found = body.verifier.checksum
    return [found[0], found[1], "FULL_OBJECT"] if found else None


def request_metadata(req: S3Request) -> tuple[str, dict[str, str], dict[str, str]]:
    """(content type, user metadata, stored standard headers) from the request headers."""
    headers = req.headers
    user = {k[len("x-amz-meta-"):]: v for k, v in headers.items() if k.startswith("x-amz-meta-")}
    stored = {k: headers[k] for k in STORED_HEADERS if k in headers}
    return headers.get("content-type", "binary/octet-stream"), user, stored


async def put_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    policy = StoragePolicy.from_dict(bucket.policy)
    key = sse.for_write(req.headers, policy.encrypt, req.security.sse_master)
    stored = await store_body(req, policy, allow_inline=True, sealer=key and key.sealer)
    content_type, user, headers = request_metadata(req)
    rec = ObjectRecord(
        bucket=req.bucket, key=req.key, hlc=req.catalog.stamp(), size=stored.size,
        etag=stored.etag, last_modified=time.time(), content_type=content_type,
        user_meta=user, headers=headers, checksum=stored.checksum, policy=bucket.policy,
        inline=base64.b64encode(stored.inline).decode() if stored.inline is not None else None,
        blocks=stored.blocks, sse=key.record() if key else {},
    )
    await req.catalog.put_object(rec)
    return Response(status_code=200, headers=_write_headers(rec))


def _write_headers(rec: ObjectRecord) -> dict[str, str]:
    out = {"ETag": f'"{rec.etag}"', **sse_headers(rec)}
    if rec.checksum:
        out[f"x-amz-checksum-{rec.checksum[0].lower()}"] = rec.checksum[1]
    return out


def sse_headers(rec: ObjectRecord) -> dict[str, str]:
    if rec.sse.get("mode") == "C":
        return {sse.CUSTOMER + "algorithm": sse.AES256, sse.CUSTOMER + "key-MD5": rec.sse["md5"]}
    return {sse.SSE: sse.AES256} if rec.sse else {}


def object_headers(rec: ObjectRecord, checksum_mode: bool) -> dict[str, str]:
    out = {
        **sse_headers(rec),
        "ETag": f'"{rec.etag}"',
        "Last-Modified": http_date(rec.last_modified),
        "Content-Type": rec.content_type,
        "Accept-Ranges": "bytes",
        **{k.title(): v for k, v in rec.headers.items()},
        **{f"x-amz-meta-{k}": v for k, v in rec.user_meta.items()},
    }
    if checksum_mode and rec.checksum:
        out[f"x-amz-checksum-{rec.checksum[0].lower()}"] = rec.checksum[1]
        out["x-amz-checksum-type"] = rec.checksum[2]
    if rec.parts:
        out["x-amz-mp-parts-count"] = str(len(rec.parts))
    return out


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) for a single byte range; None means the whole object.

    Malformed or multi-range headers are ignored (S3 serves the whole object); a range
    that starts past the end is InvalidRange (416).
    """
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:  # nothing to take the last bytes of
            raise S3Error("InvalidRange", "The requested range is not satisfiable",
                          ActualObjectSize=str(size))
        return max(size - n, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", "The requested range is not satisfiable",
                      RangeRequested=header, ActualObjectSize=str(size))
    return start, end


def _body(req: S3Request, rec: ObjectRecord, start: int, end: int,
          key: sse.ObjectKey | None) -> AsyncIterator[bytes]:
    """Plaintext bytes [start, end); ``key`` is the object's (``sse.for_read``)."""
    sealer = key.sealer if key else None
    if rec.inline is not None:
        async def one() -> AsyncIterator[bytes]:
            data = base64.b64decode(rec.inline)
            yield (sealer.unseal(data) if sealer else data)[start:end]
        return one()
    policy = StoragePolicy.from_dict(rec.policy)
    return read_range(req.backend, policy, rec.blocks, start, end, sealer)


async def get_object(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    rec = await req.catalog.object(req.bucket, req.key)
    key = sse.for_read(rec.sse, req.headers, req.security.sse_master)
    rng = parse_range(req.headers.get("range"), rec.size)
    headers = object_headers(rec, _checksum_mode(req) and rng is None)
    start, end = rng or (0, rec.size)
    status = 200
    if rng is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{rec.size}"
    headers["Content-Length"] = str(end - start)
    stream = _body(req, rec, start, end, key)
    # Fetch the first block before answering: an unreadable object gets a clean 503,
    # not a 200 that breaks off.
    first = await anext(stream, b"")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in stream:
            yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=rec.content_type)


def _checksum_mode(req: S3Request) -> bool:
    return req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


async def head_object(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    rec = await req.catalog.object(req.bucket, req.key)
    sse.for_read(rec.sse, req.headers, req.security.sse_master)
    headers = object_headers(rec, _checksum_mode(req))
    headers["Content-Length"] = str(rec.size)
    return Response(status_code=200, headers=headers)


async def delete_object(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    await req.catalog.delete_object(req.bucket, req.key)
    return Response(status_code=204)


async def delete_objects(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    root = parse_xml(await req.request.body())
    objects = root.findall("Object")
    if root.tag != "Delete" or not objects or len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema")
    quiet = (child_text(root, "Quiet") or "").lower() == "true"
    results = []
    for obj in objects:
        key = child_text(obj, "Key") or ""
        try:
            await req.catalog.delete_object(req.bucket, key)
            if not quiet:
                results.append(("Deleted", [("Key", key)]))
        except S3Error as err:
            results.append(("Error", [("Key", key), ("Code", err.code),
                                      ("Message", err.message)]))
    return xml_response("DeleteResult", results)


def parse_copy_source(value: str) -> tuple[str, str]:
    source = unquote(value.split("?versionId=")[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey")
    return bucket, key


async def copy_object(req: S3Request) -> Response:
    """A new record over the same blocks when the policies match: no bulk data moves."""
    dest_bucket = await req.catalog.bucket(req.bucket)
    src_bucket, src_key = parse_copy_source(req.headers["x-amz-copy-source"])
    await req.catalog.bucket(src_bucket)
    src = await req.catalog.object(src_bucket, src_key)
    replace = req.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    if (src_bucket, src_key) == (req.bucket, req.key) and not replace:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to "
                      "copy an object to itself without changing the object's metadata, storage "
                      "class, website redirect location or encryption attributes.")
    rec = ObjectRecord.from_dict(src.to_dict())
    rec.bucket, rec.key, rec.hlc, rec.last_modified = (
        req.bucket, req.key, req.catalog.stamp(), time.time())
    if replace:
        rec.content_type, rec.user_meta, rec.headers = request_metadata(req)
    master = req.security.sse_master
    src_key = sse.for_read(src.sse, req.headers, master, copy_source=True)
    dest_policy = StoragePolicy.from_dict(dest_bucket.policy)
    dest_key = sse.for_write(req.headers, dest_policy.encrypt, master)
    both_sse_s3 = src_key is not None and dest_key is not None and (
        src_key.mode == dest_key.mode == "S3")
    if both_sse_s3 or (src_key is None and dest_key is None):
        # The stored bytes can be shared: same data key (or none), same master key.
        if src.inline is None and src.policy != dest_bucket.policy:
            await _copy_data(req, src, rec, dest_policy, src_key, src_key)
    else:
        await _copy_data(req, src, rec, dest_policy, src_key, dest_key)
        rec.sse = dest_key.record() if dest_key else {}
    await req.catalog.put_object(rec)
    return xml_response("CopyObjectResult", [("LastModified", iso8601(rec.last_modified)),
                                             ("ETag", f'"{rec.etag}"')],
                        headers=sse_headers(rec))


async def _copy_data(req: S3Request, src: ObjectRecord, rec: ObjectRecord,
                     policy: StoragePolicy, src_key: sse.ObjectKey | None,
                     dest_key: sse.ObjectKey | None) -> None:
    """Re-encode (and re-encrypt) the data under the destination's policy and key."""
    sealer = dest_key.sealer if dest_key else None
    if src.inline is not None:
        data = b"".join([c async for c in _body(req, src, 0, src.size, src_key)])
        rec.inline = base64.b64encode(sealer.seal(data) if sealer else data).decode()
        return
    writer = BlockWriter(req.backend, policy, sealer)
    try:
        await writer.write(_body(req, src, 0, src.size, src_key))
    except BaseException:
        writer.abort()
        raise
    rec.blocks, rec.policy = writer.blocks, policy.to_dict()
