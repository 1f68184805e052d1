"""Pure parts of access control and encryption: gateway/access.py, keys.py, sse.py, sealing.py."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from cluster.process import new_secret_key
from gateway.access import REQUIRED, authorize
from gateway.app import OPERATIONS
from gateway.errors import S3Error
from gateway.keys import Principal, credential_key
from gateway.sealing import OVERHEAD, Sealer, SealError, derive_key, seal, unseal
from gateway.sse import for_read, for_write

MASTER = derive_key(b"cluster secret", "sse-s3 master")


def test_every_operation_has_a_required_permission() -> None:
    assert set(OPERATIONS) <= set(REQUIRED)


def test_new_secret_keys_are_40_letters_and_digits() -> None:
    # "-" first made `aws configure set aws_secret_access_key -Yq...` read an option.
    keys = {new_secret_key() for _ in range(2000)}
    assert len(keys) == 2000
    assert all(len(k) == 40 and k.isascii() and k.isalnum() for k in keys)


def test_authorize_levels_are_cumulative_and_fail_closed() -> None:
    writer = Principal("K", grants={"b": "write"})
    authorize(writer, "GetObject", "b", {})
    authorize(writer, "PutObject", "b", {})
    for op, bucket in [("DeleteBucket", "b"), ("GetObject", "other"), ("SomeNewOp", "b")]:
        with pytest.raises(S3Error, match="AccessDenied"):
            authorize(writer, op, bucket, {})
    with pytest.raises(S3Error, match="AccessDenied"):
        authorize(writer, "CopyObject", "b", {"x-amz-copy-source": "/other/key"})
    with pytest.raises(S3Error, match="AccessDenied"):
        authorize(None, "GetObject", "b", {})
    authorize(Principal("A", admin=True), "SomeNewOp", "b", {})


def test_credential_key_reads_header_and_presigned_forms() -> None:
    auth = (b"authorization", b"AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/"
            b"aws4_request, SignedHeaders=host, Signature=00")
    assert credential_key([auth], b"") == "AKID"
    assert credential_key([], b"X-Amz-Credential=PRE%2F20260101%2Fx") == "PRE"
    assert credential_key([(b"authorization", b"junk")], b"") is None


def test_sealing_detects_the_wrong_key_and_tampering() -> None:
    key, other = os.urandom(32), os.urandom(32)
    sealed = seal(key, b"secret", b"aad")
    assert len(sealed) == len(b"secret") + OVERHEAD
    assert unseal(key, sealed, b"aad") == b"secret"
    for k, data, aad in [(other, sealed, b"aad"), (key, sealed, b"other"),
                         (key, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"aad"), (key, b"x", b"")]:
        with pytest.raises(SealError):
            unseal(k, data, aad)
    sealer = Sealer(key)
    assert sealer.seal(b"block") != sealer.seal(b"block")  # fresh nonce per block


def test_sse_s3_and_sse_c_data_keys() -> None:
    s3_key = for_write({"x-amz-server-side-encryption": "AES256"}, False, MASTER)
    assert s3_key is not None and s3_key.record()["mode"] == "S3"
    opened = for_read(s3_key.record(), {}, MASTER)
    assert opened.sealer.unseal(s3_key.sealer.seal(b"data")) == b"data"
    assert for_write({}, False, MASTER) is None
    assert for_write({}, True, MASTER).mode == "S3"

    customer = os.urandom(32)
    headers = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
               "x-amz-server-side-encryption-customer-key": base64.b64encode(customer).decode(),
               "x-amz-server-side-encryption-customer-key-md5":
                   base64.b64encode(hashlib.md5(customer).digest()).decode()}
    c_key = for_write(headers, True, MASTER)
    assert c_key.mode == "C" and "key" in c_key.record()
    assert customer not in base64.b64decode(c_key.record()["key"])
    assert for_read(c_key.record(), headers, MASTER).sealer.unseal(
        c_key.sealer.seal(b"d")) == b"d"
    with pytest.raises(S3Error, match="InvalidRequest"):
        for_read(c_key.record(), {}, MASTER)
    wrong = dict(headers)
    wrong["x-amz-server-side-encryption-customer-key"] = base64.b64encode(os.urandom(32)).decode()
    del wrong["x-amz-server-side-encryption-customer-key-md5"]
    with pytest.raises(S3Error, match="AccessDenied"):
        for_read(c_key.record(), wrong, MASTER)
    bad_md5 = {**headers, "x-amz-server-side-encryption-customer-key-md5": "AAAA"}
    with pytest.raises(S3Error, match="InvalidArgument"):
        for_write(bad_md5, False, MASTER)
    with pytest.raises(S3Error, match="NotImplemented"):
        for_write({"x-amz-server-side-encryption": "aws:kms"}, False, MASTER)
