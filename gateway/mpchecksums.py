"""Checksums of multipart objects, as S3 defines them. Pure functions, no I/O.

An upload created with ``x-amz-checksum-algorithm`` gets a checksum type:

* COMPOSITE (the default for CRC32, CRC32C, SHA1, SHA256): the checksum of the
  concatenated binary part checksums, sent as ``"<base64>-<number of parts>"``. It
  describes the parts, not the bytes of the object, so it can only be checked part by part.
* FULL_OBJECT (the default, and only choice, for CRC64NVME; allowed for every CRC): the
  CRC of the whole object, combined from the part CRCs and part sizes without reading any
  data (``awscrt.checksums.combine_*``). It equals the CRC a client computes over the
  downloaded object. SHA algorithms cannot be combined, so FULL_OBJECT refuses them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

from awscrt import checksums as crt

from gateway.checksums import ALGORITHMS, DIGEST_SIZES, Checksum
from gateway.errors import S3Error

TYPES = ("COMPOSITE", "FULL_OBJECT")
_COMBINE = {"CRC32": crt.combine_crc32, "CRC32C": crt.combine_crc32c,
            "CRC64NVME": crt.combine_crc64nvme}


def upload_checksum(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(algorithm, type) a CreateMultipartUpload asks for; (None, None) when it asks none."""
    algorithm = headers.get("x-amz-checksum-algorithm")
    ctype = headers.get("x-amz-checksum-type")
    if algorithm is None:
        if ctype is not None:
            raise S3Error("InvalidRequest", "The x-amz-checksum-type header can only be used "
                          "with the x-amz-checksum-algorithm header.")
        return None, None
    algorithm = algorithm.strip().upper()
    if algorithm not in ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported. Please try "
                      f"again with any of the valid types: [{', '.join(ALGORITHMS)}]")
    if ctype is None:
        ctype = "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    ctype = ctype.strip().upper()
    if ctype not in TYPES:
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if ctype == "FULL_OBJECT" and algorithm not in _COMBINE:
        raise S3Error("InvalidRequest", "The FULL_OBJECT checksum type cannot be used with the "
                      f"{algorithm.lower()} checksum algorithm.")
    if ctype == "COMPOSITE" and algorithm == "CRC64NVME":
        raise S3Error("InvalidRequest", "The COMPOSITE checksum type cannot be used with the "
                      "crc64nvme checksum algorithm.")
    return algorithm, ctype


def combine(algorithm: str, ctype: str, parts: Sequence[tuple[str, int]]) -> str:
    """The object checksum from ``parts`` = [(part checksum base64, part size), ...]."""
    raw = [base64.b64decode(b64) for b64, _ in parts]
    if ctype == "COMPOSITE":
        outer = Checksum(algorithm)
        for digest in raw:
            outer.update(digest)
        return f"{outer.b64()}-{len(parts)}"
    join = _COMBINE[algorithm]
    value = int.from_bytes(raw[0], "big") if raw else 0
    for digest, (_, size) in zip(raw[1:], parts[1:], strict=True):
        value = join(value, int.from_bytes(digest, "big"), size)
    return base64.b64encode(value.to_bytes(DIGEST_SIZES[algorithm], "big")).decode("ascii")
