"""Encryption at rest: SSE-S3 (per request and bucket default), SSE-C, ciphertext on disk."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from tests.harness import error_of
from tests.security.conftest import admin_of

MiB = 1024 * 1024
MARKER = b"SHOAL-PLAINTEXT-MARKER-7f3a9c"  # written only to encrypted objects
CONTROL = b"SHOAL-CONTROL-MARKER-51be02"  # written only to the unencrypted control bucket


def body_with_marker(size: int, marker: bytes = MARKER) -> bytes:
    """Random bytes (incompressible) with the marker every 4 KiB."""
    data = bytearray(os.urandom(size))
    for at in range(0, size - len(marker), 4096):
        data[at:at + len(marker)] = marker
    return bytes(data)


def node_files_containing(data_dir: Path, needles: list[bytes]) -> list[str]:
    found = []
    for node in sorted(data_dir.glob("node-*")):
        for path in node.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                if any(n in content for n in needles):
                    found.append(str(path.relative_to(data_dir)))
    return found


def b64_forms(data: bytes) -> list[bytes]:
    """Substrings that any base64 encoding of a text containing ``data`` must contain."""
    return [base64.b64encode(b"\0" * shift + data)[4:-4] for shift in range(3)]


@pytest.fixture(scope="module")
def s3(small_cluster):
    return small_cluster.client()


def test_encrypted_bucket_keeps_only_ciphertext_on_disk(small_cluster, s3):
    admin_of(small_cluster).create_bucket("secret-media", "2+1", encrypt=True)
    s3.create_bucket(Bucket="control")
    bodies = {"big": body_with_marker(5 * MiB), "small": body_with_marker(8000)}
    for key, body in bodies.items():
        put = s3.put_object(Bucket="secret-media", Key=key, Body=body)
        assert put["ServerSideEncryption"] == "AES256"
        s3.put_object(Bucket="control", Key=key, Body=body.replace(MARKER, CONTROL))
    s3.upload_fileobj(io.BytesIO(bodies["big"] * 2), "secret-media", "multipart",
                      Config=TransferConfig(multipart_threshold=5 * MiB,
                                            multipart_chunksize=5 * MiB))
    for key, body in bodies.items():
        got = s3.get_object(Bucket="secret-media", Key=key)
        assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body
    assert s3.get_object(Bucket="secret-media", Key="multipart")["Body"].read() == (
        bodies["big"] * 2)
    head = s3.head_object(Bucket="secret-media", Key="multipart")
    assert head["ServerSideEncryption"] == "AES256"
    # Ranges open only the blocks they cover, across a block boundary too.
    big = bodies["big"]
    for lo, hi in [(0, 9), (4 * MiB - 5, 4 * MiB + 5), (5 * MiB - 3, 5 * MiB - 1)]:
        got = s3.get_object(Bucket="secret-media", Key="big", Range=f"bytes={lo}-{hi}")
        assert got["Body"].read() == big[lo:hi + 1]

    # The control shows a marker written in the clear is found by this scan (RocksDB
    # WAL, SST and blob files alike); the encrypted bucket's marker is nowhere, not even
    # base64-encoded (inline bodies sit in JSON records as base64).
    assert node_files_containing(small_cluster.data, [CONTROL])
    assert node_files_containing(small_cluster.data, [MARKER, *b64_forms(MARKER)]) == []


def test_bucket_default_encryption_round_trip(s3):
    s3.create_bucket(Bucket="defaults")
    assert error_of(s3.get_bucket_encryption, Bucket="defaults") == (
        "ServerSideEncryptionConfigurationNotFoundError", 404)
    s3.put_object(Bucket="defaults", Key="before", Body=b"clear")
    s3.put_bucket_encryption(Bucket="defaults", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rules = s3.get_bucket_encryption(Bucket="defaults")[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.put_object(Bucket="defaults", Key="after", Body=b"x")["ServerSideEncryption"] == (
        "AES256")
    assert "ServerSideEncryption" not in s3.head_object(Bucket="defaults", Key="before")
    assert error_of(s3.put_bucket_encryption, Bucket="defaults",
                    ServerSideEncryptionConfiguration={"Rules": [
                        {"ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms"}}]})[1] == 501
    s3.delete_bucket_encryption(Bucket="defaults")
    assert error_of(s3.get_bucket_encryption, Bucket="defaults")[1] == 404
    assert "ServerSideEncryption" not in s3.put_object(Bucket="defaults", Key="c", Body=b"c")
    assert s3.get_object(Bucket="defaults", Key="after")["Body"].read() == b"x"
    explicit = s3.put_object(Bucket="defaults", Key="asked", Body=b"a",
                             ServerSideEncryption="AES256")
    assert explicit["ServerSideEncryption"] == "AES256"


def test_sse_c_round_trip_and_refusals(small_cluster, s3):
    s3.create_bucket(Bucket="customer")
    key, other = os.urandom(32), os.urandom(32)
    sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    for name, body in [("small", body_with_marker(1000)), ("big", body_with_marker(5 * MiB))]:
        put = s3.put_object(Bucket="customer", Key=name, Body=body, **sse)
        assert put["SSECustomerKeyMD5"] == md5
        got = s3.get_object(Bucket="customer", Key=name, **sse)
        assert got["Body"].read() == body and got["SSECustomerKeyMD5"] == md5
        part = s3.get_object(Bucket="customer", Key=name, Range="bytes=100-199", **sse)
        assert part["Body"].read() == body[100:200]
        assert s3.head_object(Bucket="customer", Key=name, **sse)["ContentLength"] == len(body)
        assert error_of(s3.get_object, Bucket="customer", Key=name) == ("InvalidRequest", 400)
        assert error_of(s3.head_object, Bucket="customer", Key=name)[1] == 400
        assert error_of(s3.get_object, Bucket="customer", Key=name,
                        SSECustomerAlgorithm="AES256", SSECustomerKey=other) == (
            "AccessDenied", 403)
    s3.put_object(Bucket="customer", Key="clear", Body=b"clear")
    assert error_of(s3.get_object, Bucket="customer", Key="clear", **sse) == (
        "InvalidRequest", 400)
    assert error_of(s3.put_object, Bucket="customer", Key="short", Body=b"x",
                    SSECustomerAlgorithm="AES256", SSECustomerKey=b"k" * 16) == (
        "InvalidArgument", 400)

    # Multipart under SSE-C: every part carries the key.
    upload = s3.create_multipart_upload(Bucket="customer", Key="mp", **sse)["UploadId"]
    parts = []
    chunks = [body_with_marker(5 * MiB), b"tail"]
    for n, chunk in enumerate(chunks, 1):
        assert error_of(s3.upload_part, Bucket="customer", Key="mp", UploadId=upload,
                        PartNumber=n, Body=chunk)[1] == 400
        etag = s3.upload_part(Bucket="customer", Key="mp", UploadId=upload, PartNumber=n,
                              Body=chunk, **sse)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket="customer", Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket="customer", Key="mp", **sse)["Body"].read() == b"".join(chunks)

    # Copy out of SSE-C needs the source key; the copy is then stored as the target asks.
    s3.copy_object(Bucket="customer", Key="copy", CopySource="customer/small",
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key,
                   ServerSideEncryption="AES256")
    copied = s3.get_object(Bucket="customer", Key="copy")
    assert copied["ServerSideEncryption"] == "AES256"
    assert copied["Body"].read() == s3.get_object(
        Bucket="customer", Key="small", **sse)["Body"].read()
    assert error_of(s3.copy_object, Bucket="customer", Key="copy2",
                    CopySource="customer/small")[1] == 400
    # The customer key is never stored: nowhere on any node's disk.
    assert node_files_containing(small_cluster.data, [key, base64.b64encode(key)]) == []
