"""Access control lists, served as S3 serves them with ACLs disabled (its default).

Permissions in Shoal are per access key and bucket (gateway/access.py), plus a bucket's
policy; an ACL grants nothing. So, as S3 with Object Ownership "bucket owner enforced":

* GetBucketAcl and GetObjectAcl answer the owner's FULL_CONTROL, and nothing else;
* PutBucketAcl and PutObjectAcl, the ``x-amz-acl`` / ``x-amz-grant-*`` headers of any
  request, and those fields of a browser form (gateway/limits.py), are accepted only
  when they ask for what already holds -- the canned ``private`` or
  ``bucket-owner-full-control``, or a document granting the owner FULL_CONTROL alone --
  and are otherwise 400 AccessControlListNotSupported, changing nothing. (S3 refuses ``private`` too; accepting it keeps older tools that always send
  it working, and it means exactly what Shoal does.)
* GetBucketOwnershipControls answers BucketOwnerEnforced; PutBucketOwnershipControls
  takes that setting and no other, and DeleteBucketOwnershipControls (which would turn
  ACLs on) stays 501: Shoal cannot enable ACLs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from starlette.responses import Response

from gateway import versioning
from gateway.buckets import OWNER
from gateway.errors import S3Error
from gateway.limits import acl_not_supported
from gateway.xmlio import Raw, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_OWNER_ID = OWNER[0][1]
_GRANTEE = Raw(f'<Grantee xmlns:xsi="{_XSI}" xsi:type="CanonicalUser"><ID>{_OWNER_ID}</ID>'
               f'<DisplayName>{OWNER[1][1]}</DisplayName></Grantee>')


def _policy() -> list:
    grant = ("Grant", [_GRANTEE, ("Permission", "FULL_CONTROL")])
    return [("Owner", OWNER), ("AccessControlList", [grant])]


async def get_bucket_acl(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    return xml_response("AccessControlPolicy", _policy())


async def get_object_acl(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    found = await versioning.resolve(req, req.bucket, req.key, req.query.get("versionId"))
    headers = versioning.version_header(bucket, found.rec.get("version_id", versioning.NULL))
    return xml_response("AccessControlPolicy", _policy(), headers=headers)


async def put_bucket_acl(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    await _check_document(req)
    return Response(status_code=200)


async def put_object_acl(req: S3Request) -> Response:
    await versioning.resolve(req, req.bucket, req.key, req.query.get("versionId"))
    await _check_document(req)
    return Response(status_code=200)


async def _check_document(req: S3Request) -> None:
    """A body, when sent, must grant the owner FULL_CONTROL and nothing else (the
    headers were checked with the request's others)."""
    body = await req.request.body()
    if not body.strip():
        if "x-amz-acl" not in req.headers:
            raise S3Error("MissingSecurityHeader", "Your request was missing a required "
                          "header", MissingHeaderName="x-amz-acl")
        return
    root = parse_xml(body)  # namespaces dropped: tags are local names
    grants = list(root.iter("Grant"))
    if root.tag != "AccessControlPolicy" or not grants:
        raise S3Error("MalformedACLError", "The XML you provided was not well-formed or "
                      "did not validate against our published schema")
    if any(not _owner_full_control(g) for g in grants):
        raise acl_not_supported()


def _owner_full_control(grant: Element) -> bool:
    texts = {e.tag: (e.text or "").strip() for e in grant.iter()}
    return texts.get("ID") == _OWNER_ID and texts.get("Permission") == "FULL_CONTROL"


ENFORCED = "BucketOwnerEnforced"


async def get_ownership_controls(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    return xml_response("OwnershipControls", [("Rule", [("ObjectOwnership", ENFORCED)])])


async def put_ownership_controls(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    root = parse_xml(await req.request.body())
    settings = [(e.text or "").strip() for e in root.iter("ObjectOwnership")]
    if root.tag != "OwnershipControls" or not settings:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                      "validate against our published schema")
    if any(s != ENFORCED for s in settings):
        raise S3Error("NotImplemented", "Shoal serves buckets with ACLs disabled only "
                      f"(ObjectOwnership {ENFORCED})")
    return Response(status_code=200)


async def delete_ownership_controls(req: S3Request) -> Response:
    await req.catalog.bucket(req.bucket)
    raise S3Error("NotImplemented", "Deleting ownership controls would enable ACLs, which "
                  "Shoal does not serve")
