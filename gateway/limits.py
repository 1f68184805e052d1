"""Request size limits, checked before any handler reads a byte of the body.

* Header section: at most ``MAX_HEADER_BYTES`` (names + values), as S3 (8 KiB for user
  metadata inside it): RequestHeaderSectionTooLarge. User metadata (``x-amz-meta-*``
  names and values): at most ``MAX_USER_METADATA`` bytes, as S3: MetadataTooLarge.
* Operations whose handler reads the whole body into memory (small XML documents) must
  declare a Content-Length of at most ``xmlio.MAX_XML_BODY``; a larger or undeclared
  body is refused before it is read, so a client cannot make the gateway buffer it.
  Object bodies are streamed and bounded by body.MAX_SINGLE_PUT / the part size.
* ``x-amz-storage-class`` must name a class S3 knows: InvalidStorageClass otherwise. Every
  object is stored alike (the bucket's erasure-coding policy) and listed as STANDARD,
  so a known class is accepted and changes nothing: clients that ask for, say, GLACIER_IR
  keep working and read their objects back at once.
* ``x-amz-acl`` may only be ``private`` or ``bucket-owner-full-control``, and no
  ``x-amz-grant-*`` header is taken: ACLs grant nothing here (gateway/acl.py), so one that
  asks for more is AccessControlListNotSupported rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.errors import S3Error
from gateway.xmlio import MAX_XML_BODY

MAX_HEADER_BYTES = 16 * 1024
MAX_USER_METADATA = 2 * 1024
STORAGE_CLASSES = frozenset({  # botocore's StorageClass enum (tests/s3/test_unsupported.py)
    b"STANDARD", b"REDUCED_REDUNDANCY", b"STANDARD_IA", b"ONEZONE_IA", b"INTELLIGENT_TIERING",
    b"GLACIER", b"DEEP_ARCHIVE", b"OUTPOSTS", b"GLACIER_IR", b"SNOW", b"EXPRESS_ONEZONE",
    b"FSX_OPENZFS", b"FSX_ONTAP", b"AWS_BACKUP_WARM", b"AWS_BACKUP_LOW_COST_WARM",
})
CANNED_ACLS = frozenset({b"private", b"bucket-owner-full-control"})
BUFFERED_BODY_OPERATIONS = frozenset({
    "CreateBucket", "DeleteObjects", "CompleteMultipartUpload", "PutBucketEncryption",
    "PutBucketAcl", "PutObjectAcl", "PutBucketOwnershipControls",
})


def check_headers(headers: Sequence[tuple[bytes, bytes]]) -> None:
    total = meta = 0
    for name, value in headers:
        size = len(name) + len(value)
        total += size
        lowered = name.lower()
        if lowered.startswith(b"x-amz-meta-"):
            meta += size - len(b"x-amz-meta-")
        elif _asks_for_acl(lowered, value, b"x-amz-acl"):
            raise acl_not_supported()
        elif lowered == b"x-amz-storage-class" and value not in STORAGE_CLASSES:
            raise S3Error("InvalidStorageClass",
                          "The storage class you specified is not valid.",
                          StorageClassRequested=value.decode("latin-1"))
    if total > MAX_HEADER_BYTES:
        raise S3Error("RequestHeaderSectionTooLarge",
                      "Your request header section exceeds the maximum allowed size.",
                      MaxSizeAllowed=str(MAX_HEADER_BYTES))
    if meta > MAX_USER_METADATA:
        raise S3Error("MetadataTooLarge", "Your metadata headers exceed the maximum allowed "
                      "metadata size.", MaxSizeAllowed=str(MAX_USER_METADATA))


def acl_not_supported() -> S3Error:
    return S3Error("AccessControlListNotSupported", "The bucket does not allow ACLs")


def check_acl_fields(fields: Mapping[str, str]) -> None:
    """The ACL rule of ``check_headers``, for a browser form's (lower-case) fields."""
    for name, value in fields.items():
        if _asks_for_acl(name.encode(), value.encode(), b"acl"):
            raise acl_not_supported()


def _asks_for_acl(name: bytes, value: bytes, canned: bytes) -> bool:
    """Whether a (lower-case) header or form field asks for an ACL beyond the owner's
    full control: a canned ACL (named ``canned``) other than those in CANNED_ACLS, or
    any grant."""
    return name == canned and value not in CANNED_ACLS or name.startswith(b"x-amz-grant-")


def check_body(operation: str, headers: Mapping[str, str]) -> None:
    if operation not in BUFFERED_BODY_OPERATIONS:
        return
    length = headers.get("content-length")
    if length is None:
        if "transfer-encoding" in headers:
            raise S3Error("MissingContentLength",
                          "You must provide the Content-Length HTTP header.")
        return
    if not length.isdigit():
        raise S3Error("InvalidArgument", "Content-Length must be a non-negative integer")
    if int(length) > MAX_XML_BODY:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
