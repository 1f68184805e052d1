"""Multipart uploads: parts are stored as blocks; completion only writes metadata.

CompleteMultipartUpload builds the object record from the parts' block lists and, in
the same metadata batch (atomic on each owner), tombstones the upload and its parts: no
bulk data moves. Parts left out of the completion, and aborted uploads, have their
shards removed in the background.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway import sse
from gateway.blockstore import delete_blocks
from gateway.errors import S3Error
from gateway.objects import request_metadata, sse_headers, store_body
from gateway.records import (
    ObjectRecord,
    PartInfo,
    PartRecord,
    UploadRecord,
    part_key,
    part_prefix,
    prefix_end,
    upload_key,
    upload_prefix,
)
from gateway.xmlio import child_text, iso8601, parse_xml, xml_response
from placement.policy import StoragePolicy

if TYPE_CHECKING:
    from gateway.app import S3Request

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10000
MAX_PARTS_LISTED = 1000


async def _upload(req: S3Request) -> UploadRecord:
    await req.catalog.bucket(req.bucket)
    upload_id = req.query.get("uploadId", "")
    rec = await req.catalog.get(req.bucket, upload_key(req.bucket, req.key, upload_id))
    if rec is None or rec.get("deleted"):
        raise S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may "
                      "be invalid, or the upload may have been aborted or completed.",
                      UploadId=upload_id)
    return UploadRecord.from_dict(rec)


async def _parts(req: S3Request, upload: UploadRecord) -> list[PartRecord]:
    prefix = part_prefix(req.bucket, upload.upload_id)
    return [PartRecord.from_dict(rec) async for _, rec in
            req.catalog.scan(req.bucket, prefix, prefix_end(prefix))]


async def create_upload(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    content_type, user, headers = request_metadata(req)
    encrypt = StoragePolicy.from_dict(bucket.policy).encrypt
    data_key = sse.for_write(req.headers, encrypt, req.security.sse_master)
    upload = UploadRecord(
        bucket=req.bucket, key=req.key, upload_id=uuid.uuid4().hex, hlc=req.catalog.stamp(),
        initiated=time.time(), content_type=content_type, user_meta=user, headers=headers,
        checksum_algorithm=req.headers.get("x-amz-checksum-algorithm"), policy=bucket.policy,
        sse=data_key.record() if data_key else {},
    )
    key = upload_key(req.bucket, req.key, upload.upload_id)
    await req.catalog.put(req.bucket, [(key, upload.to_dict())])
    return xml_response("InitiateMultipartUploadResult", [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id)],
        headers=data_key.headers() if data_key else None)


def _part_number(req: S3Request) -> int:
    value = req.query.get("partNumber", "")
    if not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                      "inclusive")
    return int(value)


async def upload_part(req: S3Request) -> Response:
    number = _part_number(req)
    upload = await _upload(req)
    data_key = sse.for_read(upload.sse, req.headers, req.security.sse_master)
    stored = await store_body(req, StoragePolicy.from_dict(upload.policy), allow_inline=False,
                              sealer=data_key.sealer if data_key else None)
    part = PartRecord(upload_id=upload.upload_id, number=number, hlc=req.catalog.stamp(),
                      size=stored.size, etag=stored.etag, last_modified=time.time(),
                      checksum=stored.checksum, blocks=stored.blocks)
    await req.catalog.put(req.bucket, [(part_key(req.bucket, upload.upload_id, number),
                                        part.to_dict())])
    headers = {"ETag": f'"{part.etag}"', **(data_key.headers() if data_key else {})}
    if part.checksum:
        headers[f"x-amz-checksum-{part.checksum[0].lower()}"] = part.checksum[1]
    return Response(status_code=200, headers=headers)


def _requested_parts(body: bytes) -> list[tuple[int, str]]:
    root = parse_xml(body)
    parts = root.findall("Part")
    if root.tag != "CompleteMultipartUpload" or not parts:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema")
    out = []
    for p in parts:
        number, etag = child_text(p, "PartNumber"), child_text(p, "ETag")
        if not number or not number.isdigit() or etag is None:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did "
                          "not validate against our published schema")
        out.append((int(number), etag.strip().strip('"')))
    numbers = [n for n, _ in out]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. "
                      "Parts must be ordered by part number.")
    return out


async def complete_upload(req: S3Request) -> Response:
    requested = _requested_parts(await req.request.body())
    upload = await _upload(req)
    stored = {p.number: p for p in await _parts(req, upload)}
    chosen: list[PartRecord] = []
    for i, (number, etag) in enumerate(requested):
        part = stored.get(number)
        if part is None or part.etag != etag:
            raise S3Error("InvalidPart", "One or more of the specified parts could not be found."
                          "  The part may not have been uploaded, or the specified entity tag "
                          "may not have matched the part's entity tag.",
                          PartNumber=str(number), ETag=etag)
        if i < len(requested) - 1 and part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                          "allowed object size.", PartNumber=str(number))
        chosen.append(part)
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen), usedforsecurity=False)
    rec = ObjectRecord(
        bucket=req.bucket, key=req.key, hlc=req.catalog.stamp(),
        size=sum(p.size for p in chosen), etag=f"{digest.hexdigest()}-{len(chosen)}",
        last_modified=time.time(), content_type=upload.content_type,
        user_meta=upload.user_meta, headers=upload.headers, policy=upload.policy,
        sse=upload.sse, blocks=[b for p in chosen for b in p.blocks],
        parts=[PartInfo(p.number, p.size, p.etag, len(p.blocks)) for p in chosen],
    )
    await req.catalog.put_object(rec, extra=_tombstones(req, upload, stored.values()))
    unused = [b for n, p in stored.items() if n not in {c.number for c in chosen}
              for b in p.blocks]
    if unused:
        req.backend.spawn(delete_blocks(req.backend, unused))
    return xml_response("CompleteMultipartUploadResult", [
        ("Location", f"/{req.bucket}/{req.key}"), ("Bucket", req.bucket), ("Key", req.key),
        ("ETag", f'"{rec.etag}"')], headers=sse_headers(rec))


def _tombstones(req: S3Request, upload: UploadRecord, parts: object) -> list:
    stamp = req.catalog.stamp()
    items = [(upload_key(req.bucket, upload.key, upload.upload_id),
              {"hlc": stamp, "deleted": True, "v": 1})]
    items += [(part_key(req.bucket, upload.upload_id, p.number),
               {"hlc": stamp, "deleted": True, "v": 1}) for p in parts]  # type: ignore[attr-defined]
    return items


async def abort_upload(req: S3Request) -> Response:
    upload = await _upload(req)
    parts = await _parts(req, upload)
    await req.catalog.put(req.bucket, _tombstones(req, upload, parts))
    req.backend.spawn(delete_blocks(req.backend, [b for p in parts for b in p.blocks]))
    return Response(status_code=204)


async def list_parts(req: S3Request) -> Response:
    upload = await _upload(req)
    marker = int(req.query.get("part-number-marker", "0") or 0)
    limit = min(int(req.query.get("max-parts", MAX_PARTS_LISTED)), MAX_PARTS_LISTED)
    parts = [p for p in await _parts(req, upload) if p.number > marker]
    shown, truncated = parts[:limit], len(parts) > limit
    fields: list = [("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id),
                    ("PartNumberMarker", marker), ("MaxParts", limit),
                    ("IsTruncated", truncated)]
    if shown:
        fields.append(("NextPartNumberMarker", shown[-1].number))
    fields += [("Part", [("PartNumber", p.number), ("LastModified", iso8601(p.last_modified)),
                         ("ETag", f'"{p.etag}"'), ("Size", p.size)]) for p in shown]
    return xml_response("ListPartsResult", fields)


async def list_uploads(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    prefix = req.query.get("prefix", "")
    start = upload_prefix(req.bucket) + prefix
    uploads = [UploadRecord.from_dict(rec) async for _, rec in
               req.catalog.scan(req.bucket, start, prefix_end(upload_prefix(req.bucket)))
               if rec.get("key", "").startswith(prefix)]
    limit = min(int(req.query.get("max-uploads", 1000)), 1000)
    fields: list = [("Bucket", req.bucket), ("KeyMarker", ""), ("UploadIdMarker", ""),
                    ("Prefix", prefix), ("MaxUploads", limit),
                    ("IsTruncated", len(uploads) > limit)]
    fields += [("Upload", [("Key", u.key), ("UploadId", u.upload_id),
                           ("Initiated", iso8601(u.initiated)), ("StorageClass", "STANDARD")])
               for u in uploads[:limit]]
    return xml_response("ListMultipartUploadsResult", fields)
