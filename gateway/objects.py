"""Object operations: PutObject, GetObject (ranges), HeadObject, DeleteObject(s), CopyObject.

Visibility rule: an object record is written only after every block reached its write
quorum and the body passed every digest the client declared; until then nothing is
visible, and on any failure the shards already written are removed in the background.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.responses import Response, StreamingResponse

from gateway import sse, tagging, versioning
from gateway.blockstore import BlockWriter, Pieces, delete_blocks, flat_pieces, read_range
from gateway.body import UploadBody
from gateway.conditions import check_read, range_applies, write_condition
from gateway.errors import S3Error
from gateway.mediatypes import content_type_for
from gateway.overrides import apply_overrides
from gateway.records import BlockRef, ObjectRecord, object_key
from gateway.sealing import Sealer
from gateway.xmlio import http_date
from placement.policy import StoragePolicy

if TYPE_CHECKING:
    from gateway.app import S3Request

INLINE_MAX = 32 * 1024  # objects up to this size live inside their metadata record
STORED_HEADERS = ("content-encoding", "content-disposition", "content-language",
                  "cache-control", "expires")


@dataclass
class StoredBody:
    size: int
    etag: str
    checksum: list | None
    inline: bytes | None = None
    blocks: list[BlockRef] = field(default_factory=list)


async def store_body(req: S3Request, policy: StoragePolicy, allow_inline: bool,
                     compute_checksum: str | None = None,
                     sealer: Sealer | None = None) -> StoredBody:
    """Read, verify and store a request body; nothing is left behind when it fails.
    ``compute_checksum`` names an algorithm to compute when the client declared none;
    with a ``sealer`` everything stored (inline body or blocks) is ciphertext."""
    body = UploadBody(req.request, req.auth, compute_checksum)
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
    return headers.get("content-type") or content_type_for(req.key), user, stored


async def current_etag(req: S3Request, bucket: str, key: str) -> str | None:
    """The ETag of the live object at ``key`` (a quorum read), or None."""
    rec = await req.catalog.get(bucket, object_key(bucket, key))
    return None if rec is None or rec.get("deleted") else rec.get("etag", "")


async def put_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    policy = StoragePolicy.from_dict(bucket.policy)
    tags = tagging.header_tags(req)  # checked before any byte is stored
    condition = write_condition(req.headers)
    if condition is not None:  # refuse before a byte is stored
        condition.check(await current_etag(req, req.bucket, req.key))
    key = sse.for_write(req.headers, policy.encrypt, req.security.sse_master)
    stored = await store_body(req, policy, allow_inline=True, sealer=key and key.sealer)
    if condition is not None:
        try:
            condition.check(await current_etag(req, req.bucket, req.key), second=True)
        except S3Error:
            if stored.blocks:
                req.backend.spawn(delete_blocks(req.backend, stored.blocks))
            raise
    content_type, user, headers = request_metadata(req)
    rec = ObjectRecord(
        bucket=req.bucket, key=req.key, hlc=req.catalog.stamp(), size=stored.size,
        etag=stored.etag, last_modified=time.time(), content_type=content_type,
        user_meta=user, headers=headers, checksum=stored.checksum, policy=bucket.policy,
        inline=base64.b64encode(stored.inline).decode() if stored.inline is not None else None,
        blocks=stored.blocks, tags=tags, sse=key.record() if key else {},
    )
    version = await versioning.commit(req, rec, bucket)
    return Response(status_code=200, headers={**_write_headers(rec), **version})


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


def body_stream(req: S3Request, rec: ObjectRecord, start: int, end: int,
                key: sse.ObjectKey | None = None) -> AsyncGenerator[Pieces, None]:
    """Plaintext bytes [start, end), a block's pieces at a time; ``key`` is the object's
    (``sse.for_read``)."""
    sealer = key.sealer if key else None
    if rec.inline is not None:
        async def one() -> AsyncGenerator[Pieces, None]:
            data = base64.b64decode(rec.inline)
            yield [(sealer.unseal(data) if sealer else data)[start:end]]
        return one()
    policy = StoragePolicy.from_dict(rec.policy)
    return read_range(req.backend, policy, rec.blocks, start, end, sealer)


def _part_range(req: S3Request, rec: ObjectRecord) -> tuple[int, int] | None:
    """[start, end) of ``?partNumber=N``: a part of a multipart object, or (N=1) all of
    any other object."""
    value = req.query.get("partNumber")
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 10000:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                      "inclusive", ArgumentName="partNumber", ArgumentValue=value)
    if "range" in req.headers:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query "
                      "parameter")
    number = int(value)
    sizes = [p.size for p in rec.parts] or [rec.size]
    if number > len(sizes):
        raise S3Error("InvalidPartNumber", "The requested partnumber is not satisfiable",
                      PartNumberRequested=value, ActualPartCount=str(len(sizes)))
    start = sum(sizes[: number - 1])
    return start, start + sizes[number - 1]


def _part_checksum(req: S3Request, rec: ObjectRecord, headers: dict[str, str]) -> None:
    """With ?partNumber on a multipart object, the checksum sent is that part's."""
    if "partNumber" not in req.query or not rec.parts:
        return
    for name in [k for k in headers if k.startswith("x-amz-checksum-")]:
        del headers[name]
    part = rec.parts[int(req.query["partNumber"]) - 1]
    if _checksum_mode(req) and rec.checksum and part.checksum:
        headers[f"x-amz-checksum-{rec.checksum[0].lower()}"] = part.checksum


def _read_headers(req: S3Request, rec: ObjectRecord) -> tuple[int, dict[str, str]]:
    """Preconditions, then the headers every GET/HEAD answer carries; status 304 or 200."""
    not_modified = check_read(req.headers, rec.etag, rec.last_modified)
    headers = object_headers(rec, _checksum_mode(req))
    if not_modified:  # RFC 7232: a 304 carries the validators and caching headers only
        keep = ("ETag", "Last-Modified", "Cache-Control", "Expires")
        return 304, {k: v for k, v in headers.items() if k in keep}
    apply_overrides(req.query, headers, req.auth is not None)
    return 200, headers


async def get_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    rec = await versioning.read(req)
    key = sse.for_read(rec.sse, req.headers, req.security.sse_master)
    status, headers = _read_headers(req, rec)
    headers.update(versioning.read_headers(bucket, rec))
    if status == 304:
        return Response(status_code=304, headers=headers)
    rng = _part_range(req, rec)
    if rng is None and range_applies(req.headers, rec.etag, rec.last_modified):
        rng = parse_range(req.headers.get("range"), rec.size)
    if rng is not None and "partNumber" not in req.query:
        for name in [k for k in headers if k.startswith("x-amz-checksum-")]:
            del headers[name]  # a whole-object checksum does not describe a range
    _part_checksum(req, rec, headers)
    start, end = rng or (0, rec.size)
    if rng is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{rec.size}"
    headers["Content-Length"] = str(end - start)
    stream = body_stream(req, rec, start, end, key)
    # Fetch the first block before answering: an unreadable object gets a clean 503,
    # not a 200 that breaks off.
    first = await anext(stream, [])
    media_type = headers.get("Content-Type", rec.content_type)
    if sum(map(len, first)) == end - start:  # small objects and ranges inside one block
        await stream.aclose()  # a streamed response costs ~0.2 ms more (a task group)
        data = first[0] if len(first) == 1 else b"".join(first)
        return Response(data, status_code=status, headers=headers, media_type=media_type)

    async def body() -> AsyncIterator[bytes | memoryview]:
        # A block's pieces are written in one loop step, so they leave in one send
        # (cluster/httpserve.py coalesces the writes).
        for piece in first:
            yield piece
        async for piece in flat_pieces(stream):
            yield piece

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=media_type)


def _checksum_mode(req: S3Request) -> bool:
    return req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


async def head_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    rec = await versioning.read(req)
    sse.for_read(rec.sse, req.headers, req.security.sse_master)
    status, headers = _read_headers(req, rec)
    headers.update(versioning.read_headers(bucket, rec))
    if status == 304:
        return Response(status_code=304, headers=headers)
    rng = _part_range(req, rec)
    _part_checksum(req, rec, headers)
    if rng is not None:
        status = 206
        headers["Content-Range"] = f"bytes {rng[0]}-{rng[1] - 1}/{rec.size}"
    headers["Content-Length"] = str(rng[1] - rng[0] if rng else rec.size)
    return Response(status_code=status, headers=headers)
