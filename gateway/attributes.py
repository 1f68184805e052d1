"""GetObjectAttributes (GET /bucket/key?attributes): an object's facts without its body.

The ``x-amz-object-attributes`` header names what to return (ETag, Checksum, ObjectParts,
StorageClass, ObjectSize); anything else, or nothing, is 400 InvalidArgument. As in S3:
the ETag comes without quotes; a composite checksum comes without its ``-N`` suffix (the
part count is in ObjectParts); ObjectParts appears only for multipart objects, and lists
individual parts only when the parts carry checksums, paged by ``x-amz-max-parts`` and
``x-amz-part-number-marker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway.errors import S3Error
from gateway.xmlio import http_date, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def _requested(req: S3Request) -> set[str]:
    raw = req.headers.get("x-amz-object-attributes", "")
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if not names:
        raise S3Error("InvalidArgument", "x-amz-object-attributes header specifying the "
                      "attributes to be retrieved is either missing or empty",
                      ArgumentName="x-amz-object-attributes", ArgumentValue=raw)
    unknown = names - set(ATTRIBUTES)
    if unknown:
        raise S3Error("InvalidArgument", "Invalid attribute name specified.",
                      ArgumentName="x-amz-object-attributes", ArgumentValue=raw)
    return names


def _header_int(req: S3Request, name: str, default: int) -> int:
    value = req.headers.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer "
                      "range", ArgumentName=name, ArgumentValue=value)
    return int(value)


async def get_object_attributes(req: S3Request) -> Response:
    names = _requested(req)
    await req.catalog.bucket(req.bucket)
    rec = await req.catalog.object(req.bucket, req.key)
    fields: list = []
    if "ETag" in names:
        fields.append(("ETag", rec.etag))
    if "Checksum" in names and rec.checksum:
        algorithm, value, ctype = rec.checksum
        fields.append(("Checksum", [(f"Checksum{algorithm}", value.split("-")[0]),
                                    ("ChecksumType", ctype)]))
    if "ObjectParts" in names and rec.parts:
        limit = min(_header_int(req, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
        marker = _header_int(req, "x-amz-part-number-marker", 0)
        parts = [p for p in rec.parts if p.number > marker]
        shown = parts[:limit]
        section: list = [("PartsCount", len(rec.parts)), ("PartNumberMarker", marker)]
        if shown:
            section.append(("NextPartNumberMarker", shown[-1].number))
        section += [("MaxParts", limit), ("IsTruncated", len(parts) > limit)]
        if rec.checksum and all(p.checksum for p in rec.parts):
            section += [("Part", [("PartNumber", p.number), ("Size", p.size),
                                  (f"Checksum{rec.checksum[0]}", p.checksum)]) for p in shown]
        fields.append(("ObjectParts", section))
    if "StorageClass" in names:
        fields.append(("StorageClass", "STANDARD"))
    if "ObjectSize" in names:
        fields.append(("ObjectSize", rec.size))
    return xml_response("GetObjectAttributesResponse", fields,
                        headers={"Last-Modified": http_date(rec.last_modified)})
