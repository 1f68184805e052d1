"""CopyObject and UploadPartCopy: new records over existing blocks wherever possible.

CopyObject writes a new record that points at the source's blocks when the source and
destination buckets share a storage policy (no data is read or written), and re-encodes
the data under the destination's policy otherwise. ``x-amz-metadata-directive`` is COPY
(default: metadata, content type and stored headers come from the source) or REPLACE
(they come from this request); copying an object onto itself needs REPLACE.

UploadPartCopy with ``x-amz-copy-source-range``: source blocks that lie wholly inside the
range are referenced by the part (listed in ``PartRecord.borrowed``, so aborting the
upload or leaving the part out of the completion never deletes another object's shards).
Only the edge blocks a range cuts are read and re-encoded, so a copy moves at most two
blocks of data whatever its size. Blocks are referenced only when the policies match;
otherwise the range is copied.

A part's ETag is the MD5 of its bytes whenever every byte was read anyway (different
policies, an inline source, a range inside one block, or an upload with a checksum
algorithm, whose part checksum needs the bytes). When blocks were referenced without
being read, the ETag is the source's own ETag if the part is the whole of a single-part
source, else ``md5("{source etag}/{start}-{end}")``: stable and unique for that content,
though not the MD5 of the bytes. Clients only hand part ETags back to
CompleteMultipartUpload, which checks them against what UploadPartCopy returned.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.responses import Response

from gateway import sse, tagging, versioning
from gateway.blockstore import BlockWriter, flat_pieces, read_block
from gateway.checksums import Checksum
from gateway.conditions import check_copy_source, write_condition
from gateway.errors import S3Error
from gateway.multipart import find_upload, part_number
from gateway.objects import body_stream, current_etag, request_metadata, sse_headers
from gateway.records import BlockRef, ObjectRecord, PartRecord, part_key
from gateway.xmlio import iso8601, xml_response
from placement.policy import StoragePolicy

if TYPE_CHECKING:
    from gateway.app import S3Request

_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


def parse_copy_source(value: str) -> tuple[str, str]:
    """(bucket, key) of ``x-amz-copy-source`` ("bucket/key", URL-encoded, '/' optional)."""
    source = unquote(value.split("?versionId=")[0]).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                      "sourcebucket/sourcekey")
    return bucket, key


async def _source(req: S3Request) -> tuple[ObjectRecord, dict[str, str]]:
    """The source version (``?versionId=`` honoured) and its response headers."""
    bucket, key = parse_copy_source(req.headers["x-amz-copy-source"])
    src, headers = await versioning.copy_source(req, bucket, key)
    check_copy_source(req.headers, src.etag, src.last_modified)
    return src, headers


def _checksum_fields(checksum: list | None) -> list:
    if not checksum:
        return []
    fields = [(f"Checksum{checksum[0]}", checksum[1])]
    if len(checksum) > 2:
        fields.append(("ChecksumType", checksum[2]))
    return fields


async def copy_object(req: S3Request) -> Response:
    dest_bucket = await req.catalog.bucket(req.bucket)
    directive = req.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", "Unknown metadata directive.",
                      ArgumentName="x-amz-metadata-directive", ArgumentValue=directive)
    src, source_headers = await _source(req)
    tags = tagging.copy_tags(req, src.tags)
    restore = versioning.source_version(req.headers["x-amz-copy-source"]) is not None
    if (src.bucket, src.key) == (req.bucket, req.key) and directive == "COPY" and not restore:
        raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to "
                      "copy an object to itself without changing the object's metadata, storage "
                      "class, website redirect location or encryption attributes.")
    condition = write_condition(req.headers)
    if condition is not None:
        condition.check(await current_etag(req, req.bucket, req.key))
    rec = ObjectRecord.from_dict(src.to_dict())
    rec.bucket, rec.key, rec.hlc, rec.last_modified = (
        req.bucket, req.key, req.catalog.stamp(), time.time())
    if directive == "REPLACE":
        rec.content_type, rec.user_meta, rec.headers = request_metadata(req)
    rec.tags = tags
    master = req.security.sse_master
    src_key = sse.for_read(src.sse, req.headers, master, copy_source=True)
    dest_policy = StoragePolicy.from_dict(dest_bucket.policy)
    dest_key = sse.for_write(req.headers, dest_policy.encrypt, master)
    shared = (src_key is None and dest_key is None) or (
        src_key is not None and dest_key is not None and src_key.mode == dest_key.mode == "S3")
    if not shared:  # another key: decrypt and re-encrypt every byte
        await _copy_data(req, src, rec, dest_policy, src_key, dest_key)
        rec.sse = dest_key.record() if dest_key else {}
    elif src.inline is None and src.policy != dest_bucket.policy:  # same key, new shape
        await _copy_data(req, src, rec, dest_policy, src_key, src_key)
    if condition is not None:
        condition.check(await current_etag(req, req.bucket, req.key), second=True)
    version = await versioning.commit(req, rec, dest_bucket)
    return xml_response("CopyObjectResult", [("LastModified", iso8601(rec.last_modified)),
                                             ("ETag", f'"{rec.etag}"'),
                                             *_checksum_fields(rec.checksum)],
                        headers={**source_headers, **version, **sse_headers(rec)})


async def _copy_data(req: S3Request, src: ObjectRecord, rec: ObjectRecord,
                     policy: StoragePolicy, src_key: sse.ObjectKey | None,
                     dest_key: sse.ObjectKey | None) -> None:
    """Re-encode (and re-encrypt) the data under the destination's policy and key."""
    sealer = dest_key.sealer if dest_key else None
    if src.inline is not None:
        data = b"".join([p async for p in flat_pieces(
            body_stream(req, src, 0, src.size, src_key))])
        rec.inline = base64.b64encode(sealer.seal(data) if sealer else data).decode()
        return
    writer = BlockWriter(req.backend, policy, sealer)
    try:
        await writer.write(flat_pieces(body_stream(req, src, 0, src.size, src_key)))
    except BaseException:
        writer.abort()
        raise
    rec.blocks, rec.policy = writer.blocks, policy.to_dict()


def _copy_range(req: S3Request, size: int) -> tuple[int, int]:
    value = req.headers.get("x-amz-copy-source-range")
    if value is None:
        return 0, size
    m = _RANGE.match(value.strip())
    if not m:
        raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                      "bytes=first-last where first and last are the zero-based offsets of the "
                      "first and last bytes to copy", ArgumentName="x-amz-copy-source-range",
                      ArgumentValue=value)
    first, last = int(m.group(1)), int(m.group(2))
    if first > last or last >= size:
        raise S3Error("InvalidArgument", "Range specified is not valid for source object of "
                      f"size: {size}", ArgumentName="x-amz-copy-source-range",
                      ArgumentValue=value)
    return first, last + 1


class _Digests:
    """MD5 and the upload's checksum over the bytes read, fed off the event loop."""

    def __init__(self, algorithm: str | None) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.checksum = Checksum(algorithm) if algorithm else None

    def _feed(self, data: bytes) -> None:
        self.md5.update(data)
        if self.checksum is not None:
            self.checksum.update(data)

    async def feed(self, data: bytes) -> None:
        await asyncio.to_thread(self._feed, data)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _build_part(req: S3Request, src: ObjectRecord, start: int, end: int,
                      policy: StoragePolicy, algorithm: str | None
                      ) -> tuple[list[BlockRef], list[str], _Digests, bool]:
    """(blocks, borrowed block ids, digests, whether every byte went through digests)."""
    digests = _Digests(algorithm)
    writers: list[BlockWriter] = []
    blocks: list[BlockRef] = []
    borrowed: list[str] = []
    read_all = True

    async def write(data: bytes) -> None:
        writer = BlockWriter(req.backend, policy)
        writers.append(writer)
        await writer.write(_one(data))
        blocks.extend(writer.blocks)

    try:
        if src.inline is not None:
            data = base64.b64decode(src.inline)[start:end]
            await digests.feed(data)
            await write(data)
            return blocks, borrowed, digests, True
        src_policy = StoragePolicy.from_dict(src.policy)
        same = src.policy == policy.to_dict()
        offset = 0
        for block in src.blocks:
            lo, hi = max(start, offset) - offset, min(end, offset + block.size) - offset
            offset += block.size
            if lo >= hi:
                continue
            if same and (lo, hi) == (0, block.size):
                blocks.append(block)
                borrowed.append(block.id)
                if algorithm is None:
                    read_all = False
                else:
                    await digests.feed(await read_block(req.backend, src_policy, block))
                continue
            data = await read_block(req.backend, src_policy, block)
            piece = data[lo:hi] if (lo, hi) != (0, len(data)) else data
            await digests.feed(piece)
            await write(piece)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return blocks, borrowed, digests, read_all


async def upload_part_copy(req: S3Request) -> Response:
    number = part_number(req)
    upload = await find_upload(req)
    src, source_headers = await _source(req)
    if src.sse or upload.sse:
        raise S3Error("NotImplemented", "UploadPartCopy from or into an encrypted object is "
                      "not supported yet; use CopyObject or a plain upload")
    start, end = _copy_range(req, src.size)
    policy = StoragePolicy.from_dict(upload.policy)
    algorithm = upload.checksum_algorithm
    blocks, borrowed, digests, read_all = await _build_part(req, src, start, end, policy,
                                                           algorithm)
    if read_all:
        etag = digests.md5.hexdigest()
    elif (start, end) == (0, src.size) and not src.parts:
        etag = src.etag
    else:
        etag = hashlib.md5(f"{src.etag}/{start}-{end}".encode(),
                           usedforsecurity=False).hexdigest()
    checksum = None
    if digests.checksum is not None:
        checksum = [digests.checksum.algorithm, digests.checksum.b64(), "FULL_OBJECT"]
    part = PartRecord(upload_id=upload.upload_id, number=number, hlc=req.catalog.stamp(),
                      size=end - start, etag=etag, last_modified=time.time(),
                      checksum=checksum, blocks=blocks, borrowed=borrowed)
    await req.catalog.put(req.bucket, [(part_key(req.bucket, upload.upload_id, number),
                                        part.to_dict())])
    fields = [("ETag", f'"{etag}"'), ("LastModified", iso8601(part.last_modified))]
    if checksum:
        fields.append((f"Checksum{checksum[0]}", checksum[1]))
    return xml_response("CopyPartResult", fields, headers=source_headers)
