"""Bucket default encryption: PutBucketEncryption, GetBucketEncryption, DeleteBucketEncryption.

A bucket's default encryption is its storage policy's ``encrypt`` flag (one truth for the
admin API's ``--encrypt`` and for S3 clients): when set, every new object is stored with
SSE-S3 unless the request asks for SSE-C. Objects already stored keep how they were
stored. Only SSE-S3 (AES256) can be the default; SSE-KMS answers 501.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from gateway import sse
from gateway.errors import S3Error
from gateway.xmlio import child_text, parse_xml, xml_response

if TYPE_CHECKING:
    from gateway.app import S3Request

_MALFORMED = ("The XML you provided was not well-formed or did not validate against our "
              "published schema")


def parse_encryption_config(body: bytes) -> str:
    """The default SSE algorithm named by a ServerSideEncryptionConfiguration document."""
    root = parse_xml(body)
    rules = root.findall("Rule")
    if root.tag != "ServerSideEncryptionConfiguration" or len(rules) != 1:
        raise S3Error("MalformedXML", _MALFORMED)
    default = rules[0].find("ApplyServerSideEncryptionByDefault")
    algorithm = child_text(default, "SSEAlgorithm") if default is not None else None
    if not algorithm:
        raise S3Error("MalformedXML", _MALFORMED)
    sse.check_algorithm(algorithm.strip())
    return algorithm.strip()


async def _set_encrypt(req: S3Request, encrypt: bool) -> None:
    bucket = await req.catalog.bucket(req.bucket)
    await req.catalog.update_bucket(req.bucket, policy={**bucket.policy, "encrypt": encrypt})


async def put_bucket_encryption(req: S3Request) -> Response:
    parse_encryption_config(await req.request.body())
    await _set_encrypt(req, True)
    return Response(status_code=200)


async def delete_bucket_encryption(req: S3Request) -> Response:
    await _set_encrypt(req, False)
    return Response(status_code=204)


async def get_bucket_encryption(req: S3Request) -> Response:
    bucket = await req.catalog.bucket(req.bucket)
    if not bucket.policy.get("encrypt"):
        raise S3Error("ServerSideEncryptionConfigurationNotFoundError",
                      "The server side encryption configuration was not found",
                      BucketName=req.bucket)
    return xml_response("ServerSideEncryptionConfiguration", [("Rule", [
        ("ApplyServerSideEncryptionByDefault", [("SSEAlgorithm", sse.AES256)]),
        ("BucketKeyEnabled", False)])])
