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
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.responses import Response

from gateway import sse, tagging, versioning
from gateway.blockstore import delete_blocks
from gateway.buckets import OWNER
from gateway.checksums import requested_checksum
from gateway.conditions import write_condition
from gateway.errors import S3Error
from gateway.mpchecksums import combine, upload_checksum
from gateway.objects import current_etag, request_metadata, sse_headers, store_body
from gateway.records import (
    BlockRef,
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


async def find_upload(req: S3Request) -> UploadRecord:
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
    algorithm, ctype = upload_checksum(req.headers)
    encrypt = StoragePolicy.from_dict(bucket.policy).encrypt
    data_key = sse.for_write(req.headers, encrypt, req.security.sse_master)
    upload = UploadRecord(
        bucket=req.bucket, key=req.key, upload_id=uuid.uuid4().hex, hlc=req.catalog.stamp(),
        initiated=time.time(), content_type=content_type, user_meta=user, headers=headers,
        checksum_algorithm=algorithm, checksum_type=ctype, policy=bucket.policy,
        tags=tagging.header_tags(req), sse=data_key.record() if data_key else {},
    )
    key = upload_key(req.bucket, req.key, upload.upload_id)
    await req.catalog.put(req.bucket, [(key, upload.to_dict())])
    out = {}
    if algorithm:
        out = {"x-amz-checksum-algorithm": algorithm, "x-amz-checksum-type": ctype or ""}
    return xml_response("InitiateMultipartUploadResult", [
        ("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id)],
        headers={**out, **(data_key.headers() if data_key else {})})


def part_number(req: S3Request) -> int:
    value = req.query.get("partNumber", "")
    if not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
        raise S3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, "
                      "inclusive")
    return int(value)


async def upload_part(req: S3Request) -> Response:
    number = part_number(req)
    upload = await find_upload(req)
    wanted = upload.checksum_algorithm
    declared, _ = requested_checksum(req.headers)
    if wanted and declared and declared != wanted:
        raise S3Error("InvalidRequest", "Checksum Type mismatch occurred, expected checksum "
                      f"Type: {wanted.lower()}, actual checksum Type: {declared.lower()}")
    data_key = sse.for_read(upload.sse, req.headers, req.security.sse_master)
    stored = await store_body(req, StoragePolicy.from_dict(upload.policy), allow_inline=False,
                              compute_checksum=wanted,
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


@dataclass
class _Requested:
    number: int
    etag: str
    checksums: dict[str, str]  # algorithm -> base64, from <ChecksumCRC32> and kin


def _requested_parts(body: bytes) -> list[_Requested]:
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
        checksums = {el.tag[len("Checksum"):].upper(): (el.text or "").strip() for el in p
                     if isinstance(el.tag, str) and el.tag.startswith("Checksum")
                     and el.tag != "ChecksumType"}
        out.append(_Requested(int(number), etag.strip().strip('"'), checksums))
    numbers = [r.number for r in out]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. "
                      "Parts must be ordered by part number.")
    return out


def _invalid_part(number: int, etag: str) -> S3Error:
    return S3Error("InvalidPart", "One or more of the specified parts could not be found.  The "
                   "part may not have been uploaded, or the specified entity tag may not have "
                   "matched the part's entity tag.", PartNumber=str(number), ETag=etag)


def _object_checksum(req: S3Request, upload: UploadRecord, requested: list[_Requested],
                     chosen: list[PartRecord]) -> list | None:
    """[algorithm, value, type] of the completed object; checks every checksum the
    request states (per part in the XML, whole object in x-amz-checksum-*)."""
    algorithm, ctype = upload.checksum_algorithm, upload.checksum_type or "COMPOSITE"
    for r, part in zip(requested, chosen, strict=True):
        for alg, value in r.checksums.items():
            if not part.checksum or part.checksum[0] != alg or part.checksum[1] != value:
                raise _invalid_part(r.number, r.etag)
    asked_type = req.headers.get("x-amz-checksum-type")
    if asked_type is not None and (not algorithm or asked_type.upper() != ctype):
        raise S3Error("InvalidRequest", "The upload was created using a "
                      f"{ctype if algorithm else 'null'} checksum mode. The complete request "
                      f"must use the same checksum mode.")
    if not algorithm:
        return None
    if any(not p.checksum or p.checksum[0] != algorithm for p in chosen):
        raise S3Error("InvalidRequest", f"The upload was created using the {algorithm.lower()} "
                      "checksum algorithm but a part has no checksum of that algorithm.")
    value = combine(algorithm, ctype, [(p.checksum[1], p.size) for p in chosen])  # type: ignore[index]
    declared = req.headers.get(f"x-amz-checksum-{algorithm.lower()}")
    if declared is not None and declared.strip() != value:
        raise S3Error("BadDigest", f"The {algorithm} you specified did not match the "
                      "calculated checksum.")
    return [algorithm, value, ctype]


def owned_blocks(part: PartRecord) -> list[BlockRef]:
    """The blocks a part may delete: not those it borrowed from another object."""
    return [b for b in part.blocks if b.id not in set(part.borrowed)]


async def complete_upload(req: S3Request) -> Response:
    requested = _requested_parts(await req.request.body())
    upload = await find_upload(req)
    condition = write_condition(req.headers)
    if condition is not None:
        condition.check(await current_etag(req, req.bucket, req.key))
    stored = {p.number: p for p in await _parts(req, upload)}
    chosen: list[PartRecord] = []
    for i, r in enumerate(requested):
        part = stored.get(r.number)
        if part is None or part.etag != r.etag:
            raise _invalid_part(r.number, r.etag)
        if i < len(requested) - 1 and part.size < MIN_PART_SIZE:
            raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum "
                          "allowed object size.", PartNumber=str(r.number))
        chosen.append(part)
    size = sum(p.size for p in chosen)
    declared_size = req.headers.get("x-amz-mp-object-size")
    if declared_size is not None and declared_size.strip() != str(size):
        raise S3Error("InvalidRequest", f"The provided 'x-amz-mp-object-size' header value "
                      f"{declared_size} does not match what was computed: {size}")
    checksum = _object_checksum(req, upload, requested, chosen)
    digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in chosen), usedforsecurity=False)
    rec = ObjectRecord(
        bucket=req.bucket, key=req.key, hlc=req.catalog.stamp(), size=size,
        etag=f"{digest.hexdigest()}-{len(chosen)}", checksum=checksum,
        last_modified=time.time(), content_type=upload.content_type,
        user_meta=upload.user_meta, headers=upload.headers, policy=upload.policy,
        sse=upload.sse, blocks=[b for p in chosen for b in p.blocks],
        parts=[PartInfo(p.number, p.size, p.etag, len(p.blocks),
                        p.checksum[1] if p.checksum else None) for p in chosen],
        tags=upload.tags,
    )
    version = await versioning.commit(req, rec, extra=_tombstones(req, upload, stored.values()))
    used = {c.number for c in chosen}
    unused = [b for n, p in stored.items() if n not in used for b in owned_blocks(p)]
    if unused:
        req.backend.spawn(delete_blocks(req.backend, unused))
    fields: list = [("Location", f"/{req.bucket}/{req.key}"), ("Bucket", req.bucket),
                    ("Key", req.key), ("ETag", f'"{rec.etag}"')]
    if checksum:
        fields += [(f"Checksum{checksum[0]}", checksum[1]), ("ChecksumType", checksum[2])]
    return xml_response("CompleteMultipartUploadResult", fields, headers={**version, **sse_headers(rec)})


def _tombstones(req: S3Request, upload: UploadRecord, parts: object) -> list:
    stamp = req.catalog.stamp()
    items = [(upload_key(req.bucket, upload.key, upload.upload_id),
              {"hlc": stamp, "deleted": True, "v": 1})]
    items += [(part_key(req.bucket, upload.upload_id, p.number),
               {"hlc": stamp, "deleted": True, "v": 1}) for p in parts]  # type: ignore[attr-defined]
    return items


async def abort_upload(req: S3Request) -> Response:
    upload = await find_upload(req)
    parts = await _parts(req, upload)
    await req.catalog.put(req.bucket, _tombstones(req, upload, parts))
    req.backend.spawn(delete_blocks(req.backend, [b for p in parts for b in owned_blocks(p)]))
    return Response(status_code=204)


def _int_param(req: S3Request, name: str, default: int) -> int:
    value = req.query.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer "
                      "range", ArgumentName=name, ArgumentValue=value)
    return int(value)


async def list_parts(req: S3Request) -> Response:
    upload = await find_upload(req)
    marker = _int_param(req, "part-number-marker", 0)
    limit = min(_int_param(req, "max-parts", MAX_PARTS_LISTED), MAX_PARTS_LISTED)
    parts = [p for p in await _parts(req, upload) if p.number > marker]
    shown, truncated = parts[:limit], len(parts) > limit
    fields: list = [("Bucket", req.bucket), ("Key", req.key), ("UploadId", upload.upload_id),
                    ("PartNumberMarker", marker), ("MaxParts", limit),
                    ("IsTruncated", truncated)]
    if shown:
        fields.append(("NextPartNumberMarker", shown[-1].number))
    if upload.checksum_algorithm:
        fields += [("ChecksumAlgorithm", upload.checksum_algorithm),
                   ("ChecksumType", upload.checksum_type or "COMPOSITE")]
    fields.append(("StorageClass", "STANDARD"))
    for p in shown:
        entry = [("PartNumber", p.number), ("LastModified", iso8601(p.last_modified)),
                 ("ETag", f'"{p.etag}"'), ("Size", p.size)]
        if p.checksum:
            entry.append((f"Checksum{p.checksum[0]}", p.checksum[1]))
        fields.append(("Part", entry))
    return xml_response("ListPartsResult", fields)


async def list_uploads(req: S3Request) -> Response:
    """Uploads in (key, initiation time) order, S3's order, with markers and delimiter."""
    await req.catalog.bucket(req.bucket)
    q = req.query
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
    key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
    encoding = q.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", "Invalid Encoding Method specified in Request",
                      ArgumentName="encoding-type", ArgumentValue=encoding)
    limit = min(_int_param(req, "max-uploads", 1000), 1000)
    base = upload_prefix(req.bucket)
    found = [UploadRecord.from_dict(rec) async for _, rec in
             req.catalog.scan(req.bucket, base + prefix, prefix_end(base))
             if rec.get("key", "").startswith(prefix)]
    uploads = sorted(found, key=lambda u: (u.key, u.initiated, u.upload_id))
    if key_marker:
        after_id = None
        if id_marker:
            ids = [u.upload_id for u in uploads if u.key == key_marker]
            after_id = ids.index(id_marker) + 1 if id_marker in ids else len(ids)
        kept = []
        for u in uploads:
            if u.key > key_marker:
                kept.append(u)
            elif u.key == key_marker and after_id is not None:
                after_id -= 1
                if after_id < 0:
                    kept.append(u)
        uploads = kept
    entries: list[UploadRecord | str] = []
    truncated = False
    for u in uploads:
        cut = u.key.find(delimiter, len(prefix)) if delimiter else -1
        common = u.key[: cut + len(delimiter)] if cut >= 0 else None
        if common is not None and entries and entries[-1] == common:
            continue
        if len(entries) == limit:
            truncated = True
            break
        entries.append(common if common is not None else u)

    def enc(value: str) -> str:
        return quote(value, safe="/") if encoding else value

    fields: list = [("Bucket", req.bucket), ("KeyMarker", enc(key_marker)),
                    ("UploadIdMarker", id_marker)]
    if truncated and entries:
        last = entries[-1]
        fields += [("NextKeyMarker", enc(last if isinstance(last, str) else last.key)),
                   ("NextUploadIdMarker", "" if isinstance(last, str) else last.upload_id)]
    if delimiter:
        fields.append(("Delimiter", enc(delimiter)))
    fields += [("Prefix", enc(prefix)), ("MaxUploads", limit), ("IsTruncated", truncated)]
    if encoding:
        fields.append(("EncodingType", "url"))
    for e in entries:
        if isinstance(e, UploadRecord):
            entry = [("Key", enc(e.key)), ("UploadId", e.upload_id),
                     ("Initiator", OWNER), ("Owner", OWNER), ("StorageClass", "STANDARD"),
                     ("Initiated", iso8601(e.initiated))]
            if e.checksum_algorithm:
                entry += [("ChecksumAlgorithm", e.checksum_algorithm),
                          ("ChecksumType", e.checksum_type or "COMPOSITE")]
            fields.append(("Upload", entry))
    fields += [("CommonPrefixes", [("Prefix", enc(e))]) for e in entries if isinstance(e, str)]
    return xml_response("ListMultipartUploadsResult", fields)
