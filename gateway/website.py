"""Static website configuration (Put/Get/DeleteBucketWebsite) and how a website path maps
to a key. The endpoint that serves the site is gateway/webendpoint.py.

Supported: IndexDocument/Suffix and ErrorDocument/Key. RedirectAllRequestsTo and
RoutingRules answer 501 NotImplemented rather than being stored and ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway.bucketconfig import read_small_body
from gateway.errors import S3Error
from gateway.xmlio import MAX_XML_BODY, child_text, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request


def _malformed() -> S3Error:
    return S3Error("MalformedXML", "The XML you provided was not well-formed or did not "
                   "validate against our published schema")


def parse_website(body: bytes) -> dict[str, str]:
    """{"index": suffix, "error": key (optional)} from a WebsiteConfiguration document."""
    root = parse_xml(body)
    if root.tag != "WebsiteConfiguration":
        raise _malformed()
    for unsupported in ("RedirectAllRequestsTo", "RoutingRules"):
        if root.find(unsupported) is not None:
            raise S3Error("NotImplemented", f"{unsupported} is not implemented")
    index = root.find("IndexDocument")
    suffix = child_text(index, "Suffix") if index is not None else None
    if suffix is None:
        raise S3Error("InvalidArgument", "A value for IndexDocument Suffix must be provided "
                      "if RedirectAllRequestsTo is empty")
    if not suffix or "/" in suffix:
        raise S3Error("InvalidArgument", "The IndexDocument Suffix is not well formed",
                      ArgumentName="IndexDocument", ArgumentValue=suffix)
    config = {"index": suffix}
    error = root.find("ErrorDocument")
    if error is not None:
        key = child_text(error, "Key")
        if not key:
            raise S3Error("InvalidArgument", "The ErrorDocument Key is not well formed",
                          ArgumentName="ErrorDocument", ArgumentValue=key or "")
        config["error"] = key
    return config


def index_key(config: dict[str, str], key: str) -> str:
    """The key a website path names: a "directory" (empty or ending in '/') means its
    index document."""
    return key + config["index"] if key == "" or key.endswith("/") else key


# Handlers --------------------------------------------------------------------------

async def put_website(req: S3Request) -> Response:
    config = parse_website(await read_small_body(req.request, MAX_XML_BODY, _malformed()))

    await req.catalog.update_bucket(req.bucket, website=config)
    return Response(status_code=200)


async def get_website(req: S3Request) -> Response:
    rec = await req.catalog.bucket(req.bucket)
    if not rec.website:
        raise S3Error("NoSuchWebsiteConfiguration", "The specified bucket does not have a "
                      "website configuration", BucketName=req.bucket)
    children: list = [("IndexDocument", [("Suffix", rec.website["index"])])]
    if rec.website.get("error"):
        children.append(("ErrorDocument", [("Key", rec.website["error"])]))
    return xml_response("WebsiteConfiguration", children)


async def delete_website(req: S3Request) -> Response:
    await req.catalog.update_bucket(req.bucket, website={})
    return Response(status_code=204)
