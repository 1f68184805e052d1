"""x-amz-checksum-* on single and multipart uploads: stored, verified, combined, returned."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig

from tests.harness import error_of, http

MiB = 1024 * 1024


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def checksum(algorithm: str, data: bytes) -> bytes:
    crcs = {"CRC32": (crt.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}
    if algorithm in crcs:
        fn, size = crcs[algorithm]
        return fn(data).to_bytes(size, "big")
    return hashlib.new(algorithm.lower(), data).digest()


@pytest.fixture(scope="module")
def s3(cluster):
    s3 = cluster.client(signature_version="s3v4")
    s3.create_bucket(Bucket="sums")
    return s3


@pytest.fixture(scope="module")
def plain(cluster):
    """A client that sends no checksum unless told to (botocore's opt-out)."""
    return cluster.client(request_checksum_calculation="when_required",
                          response_checksum_validation="when_required")


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_single_put_checksums(s3, algorithm):
    data = os.urandom(40_000)
    want = b64(checksum(algorithm, data))
    put = s3.put_object(Bucket="sums", Key=f"one/{algorithm}", Body=data,
                        ChecksumAlgorithm=algorithm)
    assert put[f"Checksum{algorithm}"] == want
    got = s3.get_object(Bucket="sums", Key=f"one/{algorithm}", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert (got[f"Checksum{algorithm}"], got["ChecksumType"]) == (want, "FULL_OBJECT")
    head = s3.head_object(Bucket="sums", Key=f"one/{algorithm}", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == want


def test_checksum_only_with_checksum_mode(s3):
    s3.put_object(Bucket="sums", Key="mode", Body=b"abc", ChecksumAlgorithm="SHA1")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "sums", "Key": "mode"})
    _, headers, _ = http("GET", url)
    assert not any(k.lower().startswith("x-amz-checksum") for k in headers)


def test_composite_multipart(s3):
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    up = s3.create_multipart_upload(Bucket="sums", Key="composite", ChecksumAlgorithm="SHA256")
    assert (up["ChecksumAlgorithm"], up["ChecksumType"]) == ("SHA256", "COMPOSITE")
    uid = up["UploadId"]
    done_parts = []
    for n, data in enumerate(parts, 1):
        out = s3.upload_part(Bucket="sums", Key="composite", UploadId=uid, PartNumber=n,
                             Body=data, ChecksumAlgorithm="SHA256")
        assert out["ChecksumSHA256"] == b64(hashlib.sha256(data).digest())
        done_parts.append({"PartNumber": n, "ETag": out["ETag"],
                           "ChecksumSHA256": out["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket="sums", Key="composite", UploadId=uid)
    assert listed["ChecksumAlgorithm"] == "SHA256"
    assert [p["ChecksumSHA256"] for p in listed["Parts"]] == [
        p["ChecksumSHA256"] for p in done_parts]
    done = s3.complete_multipart_upload(Bucket="sums", Key="composite", UploadId=uid,
                                        MultipartUpload={"Parts": done_parts})
    outer = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (f"{b64(outer)}-2", "COMPOSITE")
    head = s3.head_object(Bucket="sums", Key="composite", ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (f"{b64(outer)}-2", "COMPOSITE")
    part2 = s3.get_object(Bucket="sums", Key="composite", PartNumber=2, ChecksumMode="ENABLED")
    assert part2["Body"].read() == parts[1] and part2["PartsCount"] == 2
    assert part2["ChecksumSHA256"] == b64(hashlib.sha256(parts[1]).digest())
    assert part2["ContentRange"] == f"bytes {5 * MiB}-{5 * MiB + 999}/{5 * MiB + 1000}"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_multipart(s3, algorithm):
    parts = [os.urandom(5 * MiB + 3), os.urandom(777)]
    key = f"full/{algorithm}"
    up = s3.create_multipart_upload(Bucket="sums", Key=key, ChecksumAlgorithm=algorithm,
                                    ChecksumType="FULL_OBJECT")
    assert up["ChecksumType"] == "FULL_OBJECT"
    uid = up["UploadId"]
    done_parts = [{"PartNumber": n, "ETag": s3.upload_part(
        Bucket="sums", Key=key, UploadId=uid, PartNumber=n, Body=data,
        ChecksumAlgorithm=algorithm)["ETag"]} for n, data in enumerate(parts, 1)]
    whole = b64(checksum(algorithm, b"".join(parts)))
    wrong = b64(checksum(algorithm, b"not the object"))
    assert error_of(s3.complete_multipart_upload, Bucket="sums", Key=key, UploadId=uid,
                    MultipartUpload={"Parts": done_parts}, ChecksumType="FULL_OBJECT",
                    **{f"Checksum{algorithm}": wrong}) == ("BadDigest", 400)
    assert error_of(s3.complete_multipart_upload, Bucket="sums", Key=key, UploadId=uid,
                    MultipartUpload={"Parts": done_parts}, MpuObjectSize=1) == (
        "InvalidRequest", 400)
    done = s3.complete_multipart_upload(Bucket="sums", Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": done_parts},
                                        ChecksumType="FULL_OBJECT",
                                        MpuObjectSize=sum(map(len, parts)),
                                        **{f"Checksum{algorithm}": whole})
    assert (done[f"Checksum{algorithm}"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    got = s3.get_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts)  # botocore validates the full CRC too
    assert got[f"Checksum{algorithm}"] == whole


def test_crc64nvme_defaults_to_full_object_and_bad_combinations(s3):
    up = s3.create_multipart_upload(Bucket="sums", Key="nv", ChecksumAlgorithm="CRC64NVME")
    assert up["ChecksumType"] == "FULL_OBJECT"
    assert error_of(s3.create_multipart_upload, Bucket="sums", Key="x",
                    ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT") == (
        "InvalidRequest", 400)
    assert error_of(s3.create_multipart_upload, Bucket="sums", Key="x",
                    ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE") == (
        "InvalidRequest", 400)


def test_part_checksums_checked_and_computed(s3, plain):
    uid = s3.create_multipart_upload(Bucket="sums", Key="parts",
                                     ChecksumAlgorithm="SHA1")["UploadId"]
    assert error_of(s3.upload_part, Bucket="sums", Key="parts", UploadId=uid, PartNumber=1,
                    Body=b"x", ChecksumAlgorithm="CRC32") == ("InvalidRequest", 400)
    assert error_of(s3.upload_part, Bucket="sums", Key="parts", UploadId=uid, PartNumber=1,
                    Body=b"x", ChecksumSHA1=b64(hashlib.sha1(b"y").digest())) == (
        "BadDigest", 400)
    # A part sent without a checksum gets one computed with the upload's algorithm.
    out = plain.upload_part(Bucket="sums", Key="parts", UploadId=uid, PartNumber=1, Body=b"x")
    assert out["ChecksumSHA1"] == b64(hashlib.sha1(b"x").digest())
    wrong = [{"PartNumber": 1, "ETag": out["ETag"],
              "ChecksumSHA1": b64(hashlib.sha1(b"z").digest())}]
    assert error_of(s3.complete_multipart_upload, Bucket="sums", Key="parts", UploadId=uid,
                    MultipartUpload={"Parts": wrong}) == ("InvalidPart", 400)


def test_content_md5_on_every_upload_path(s3, plain):
    bad = b64(hashlib.md5(b"other").digest())
    good = b64(hashlib.md5(b"body").digest())
    assert error_of(plain.put_object, Bucket="sums", Key="md5", Body=b"body",
                    ContentMD5=bad) == ("BadDigest", 400)
    plain.put_object(Bucket="sums", Key="md5", Body=b"body", ContentMD5=good)
    uid = plain.create_multipart_upload(Bucket="sums", Key="md5mp")["UploadId"]
    assert error_of(plain.upload_part, Bucket="sums", Key="md5mp", UploadId=uid, PartNumber=1,
                    Body=b"body", ContentMD5=bad) == ("BadDigest", 400)
    assert error_of(plain.upload_part, Bucket="sums", Key="md5mp", UploadId=uid, PartNumber=1,
                    Body=b"body", ContentMD5="not-base64") == ("InvalidDigest", 400)
    plain.upload_part(Bucket="sums", Key="md5mp", UploadId=uid, PartNumber=1, Body=b"body",
                      ContentMD5=good)
    assert [p["Size"] for p in plain.list_parts(Bucket="sums", Key="md5mp",
                                                UploadId=uid)["Parts"]] == [4]


def test_sdk_default_multipart_round_trip(cluster, s3):
    """boto3's managed transfer with its defaults (it picks the checksum settings)."""
    data = os.urandom(12 * MiB + 1)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_fileobj(io.BytesIO(data), "sums", "managed", Config=config)
    out = io.BytesIO()
    s3.download_fileobj("sums", "managed", out)
    assert out.getvalue() == data
