"""Multipart checksums: full-object CRCs equal the CRC of the whole; composites as S3."""

from __future__ import annotations

import base64
import hashlib

import pytest
from awscrt import checksums as crt
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.checksums import Checksum
from gateway.errors import S3Error
from gateway.mpchecksums import combine, upload_checksum

CRCS = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


def b64(algorithm: str, data: bytes) -> str:
    c = Checksum(algorithm)
    c.update(data)
    return c.b64()


@settings(max_examples=60, deadline=None)
@given(algorithm=st.sampled_from(sorted(CRCS)),
       parts=st.lists(st.binary(max_size=200), min_size=1, max_size=6))
def test_full_object_equals_crc_of_concatenation(algorithm, parts):
    fn, size = CRCS[algorithm]
    whole = base64.b64encode(fn(b"".join(parts)).to_bytes(size, "big")).decode()
    assert combine(algorithm, "FULL_OBJECT", [(b64(algorithm, p), len(p)) for p in parts]) == (
        whole)


def test_composite():
    parts = [b"abc", b"defg"]
    inner = b"".join(hashlib.sha256(p).digest() for p in parts)
    expect = base64.b64encode(hashlib.sha256(inner).digest()).decode() + "-2"
    assert combine("SHA256", "COMPOSITE", [(b64("SHA256", p), len(p)) for p in parts]) == expect


@pytest.mark.parametrize("headers, expect", [
    ({}, (None, None)),
    ({"x-amz-checksum-algorithm": "crc32"}, ("CRC32", "COMPOSITE")),
    ({"x-amz-checksum-algorithm": "CRC64NVME"}, ("CRC64NVME", "FULL_OBJECT")),
    ({"x-amz-checksum-algorithm": "CRC32C", "x-amz-checksum-type": "FULL_OBJECT"},
     ("CRC32C", "FULL_OBJECT")),
    ({"x-amz-checksum-type": "COMPOSITE"}, "InvalidRequest"),
    ({"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "FULL_OBJECT"},
     "InvalidRequest"),
    ({"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"},
     "InvalidRequest"),
    ({"x-amz-checksum-algorithm": "MD4"}, "InvalidRequest"),
])
def test_upload_checksum(headers, expect):
    if isinstance(expect, str):
        with pytest.raises(S3Error) as err:
            upload_checksum(headers)
        assert err.value.code == expect
    else:
        assert upload_checksum(headers) == expect
