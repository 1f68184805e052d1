"""DeleteObject and DeleteObjects, versioning-aware (the rules are in gateway/versioning.py).

Deleting a key of a versioned bucket writes a delete marker; deleting with a version id
removes that version for good. Both answer as S3 does: 204 (with x-amz-version-id and
x-amz-delete-marker when they apply), also when there was nothing to delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway import versioning
from gateway.errors import S3Error
from gateway.xmlio import child_text, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

MAX_DELETE_KEYS = 1000


async def delete_object(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    version_id, marker = await versioning.delete(req, bucket, req.key,
                                                 req.query.get("versionId"))
    headers = {}
    if version_id is not None:
        headers["x-amz-version-id"] = version_id
    if marker:
        headers["x-amz-delete-marker"] = "true"
    return Response(status_code=204, headers=headers)


async def delete_objects(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    root = parse_xml(await req.request.body())
    objects = root.findall("Object")
    if root.tag != "Delete" or not objects or len(objects) > MAX_DELETE_KEYS:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema")
    quiet = (child_text(root, "Quiet") or "").lower() == "true"
    results = []
    for obj in objects:
        key = child_text(obj, "Key") or ""
        asked = child_text(obj, "VersionId")
        named = [("Key", key)] + ([("VersionId", asked)] if asked is not None else [])
        try:
            version_id, marker = await versioning.delete(req, bucket, key, asked)
        except S3Error as err:
            results.append(("Error", [*named, ("Code", err.code), ("Message", err.message)]))
            continue
        if quiet:
            continue
        if marker:
            # A new marker (no version asked) or a marker removed by its version id.
            named += [("DeleteMarker", True), ("DeleteMarkerVersionId", version_id)]
        results.append(("Deleted", named))
    return xml_response("DeleteResult", results)
