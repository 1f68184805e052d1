"""Server-side encryption of objects: SSE-S3 and SSE-C, as S3 clients ask for them.

Every encrypted object (or multipart upload) has its own random 256-bit data key; its
blocks (and an inline body) are sealed with it (gateway/blockstore.py). The data key is
stored in the object record only wrapped (AES-256-GCM):

* SSE-S3 (``x-amz-server-side-encryption: AES256``, or the bucket's default encryption):
  wrapped by the cluster master key (gateway/security.py), which is never stored;
* SSE-C (``x-amz-server-side-encryption-customer-{algorithm,key,key-MD5}``): wrapped by
  the customer's key, which Shoal never stores at all. Unwrapping with another key fails
  its GCM tag: 403 AccessDenied. Reading an SSE-C object without a key: 400 InvalidRequest.

Record form: ``sse = {"mode": "S3" | "C", "key": base64(wrapped data key), "md5": ...}``
(``md5`` only for SSE-C: the base64 MD5 of the customer key, echoed back as S3 does).
An empty ``sse`` means the object is stored in the clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import S3Error
from gateway.sealing import KEY_BYTES, Sealer, SealError, seal, unseal

SSE = "x-amz-server-side-encryption"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
AES256 = "AES256"
_AAD = b"shoal sse data key v1"


@dataclass
class ObjectKey:
    """An object's data key, ready to seal/unseal blocks, and how it is stored."""

    mode: str  # "S3" | "C"
    sealer: Sealer
    wrapped: bytes
    key_md5: str = ""

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "key": base64.b64encode(self.wrapped).decode()}
        if self.mode == "C":
            out["md5"] = self.key_md5
        return out

    def headers(self) -> dict[str, str]:
        """Response headers that tell the client how the object is encrypted."""
        if self.mode == "C":
            return {CUSTOMER + "algorithm": AES256, CUSTOMER + "key-MD5": self.key_md5}
        return {SSE: AES256}


def customer_key(headers: Mapping[str, str], copy_source: bool = False
                 ) -> tuple[bytes, str] | None:
    """(key, base64 MD5) from the SSE-C headers, None when there are none; validated."""
    prefix = COPY_CUSTOMER if copy_source else CUSTOMER
    alg, key, md5 = (headers.get(prefix + n) for n in ("algorithm", "key", "key-md5"))
    if alg is None and key is None and md5 is None:
        return None
    if alg is None or key is None:
        raise S3Error("InvalidArgument", "Requests specifying Server Side Encryption with "
                      "Customer provided keys must provide both the algorithm and the key.")
    if alg != AES256:
        raise S3Error("InvalidArgument", "The encryption algorithm specified is not valid; "
                      "only AES256 is supported.")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise S3Error("InvalidArgument",
                      "The secret key was invalid for the specified algorithm.")
    digest = base64.b64encode(hashlib.md5(raw, usedforsecurity=False).digest()).decode()
    if md5 is not None and md5 != digest:
        raise S3Error("InvalidArgument", "The calculated MD5 hash of the key did not match "
                      "the hash that was provided.")
    return raw, digest


def for_write(headers: Mapping[str, str], bucket_default: bool, master: bytes
              ) -> ObjectKey | None:
    """A fresh data key when the request or the bucket's default asks for encryption."""
    requested = headers.get(SSE)
    customer = customer_key(headers)
    if requested is not None:
        if customer is not None:
            raise S3Error("InvalidArgument", "Server Side Encryption with Customer provided "
                          "key is incompatible with the encryption method specified")
        check_algorithm(requested)
    if customer is None and requested is None and not bucket_default:
        return None
    wrap_key, mode, md5 = (customer[0], "C", customer[1]) if customer else (master, "S3", "")
    data_key = os.urandom(KEY_BYTES)
    return ObjectKey(mode, Sealer(data_key), seal(wrap_key, data_key, _AAD), md5)


def check_algorithm(value: str) -> None:
    if value == "aws:kms" or value == "aws:kms:dsse":
        raise S3Error("NotImplemented", "SSE-KMS is not supported; use AES256 (SSE-S3) "
                      "or customer-provided keys (SSE-C)")
    if value != AES256:
        raise S3Error("InvalidArgument", "The encryption method specified is not supported",
                      ArgumentName=SSE, ArgumentValue=value)


def for_read(sse: Mapping[str, Any], headers: Mapping[str, str], master: bytes,
             copy_source: bool = False) -> ObjectKey | None:
    """The data key of a stored object (None: stored in the clear).

    SSE-C objects need the customer key in the request (400 without, 403 when wrong);
    customer-key headers on any other object are refused (400), as S3 does.
    """
    customer = customer_key(headers, copy_source)
    if not sse:
        if customer is not None:
            raise S3Error("InvalidRequest", "The encryption parameters are not applicable "
                          "to this object.")
        return None
    wrapped = base64.b64decode(sse["key"])
    if sse.get("mode") == "C":
        if customer is None:
            raise S3Error("InvalidRequest", "The object was stored using a form of Server Side "
                          "Encryption. The correct parameters must be provided to retrieve "
                          "the object.")
        try:
            data_key = unseal(customer[0], wrapped, _AAD)
        except SealError:
            raise S3Error("AccessDenied", "Access Denied") from None
        return ObjectKey("C", Sealer(data_key), wrapped, customer[1])
    if customer is not None:
        raise S3Error("InvalidRequest", "The encryption parameters are not applicable to this "
                      "object.")
    return ObjectKey("S3", Sealer(unseal(master, wrapped, _AAD)), wrapped)
