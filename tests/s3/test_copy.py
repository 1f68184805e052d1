"""CopyObject (metadata directives, onto itself, across buckets) and UploadPartCopy."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.harness import error_of

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(cluster):
    s3 = cluster.client()
    for name in ("copy-a", "copy-b"):
        s3.create_bucket(Bucket=name)
    return s3


@pytest.fixture(scope="module")
def big(s3):
    """A 9 MiB + 7 B object: blocks of 4 MiB, 4 MiB and 1 MiB + 7 B."""
    data = os.urandom(9 * MiB + 7)
    s3.put_object(Bucket="copy-a", Key="big", Body=data)
    return data


def test_copy_directive_copy_keeps_source_metadata(s3):
    s3.put_object(Bucket="copy-a", Key="src", Body=b"payload", ContentType="text/csv",
                  Metadata={"a": "1"}, CacheControl="no-cache", ContentLanguage="de")
    out = s3.copy_object(Bucket="copy-b", Key="dst", CopySource="copy-a/src",
                         ContentType="ignored/with-copy", Metadata={"ignored": "yes"})
    assert out["CopyObjectResult"]["ETag"] == '"{}"'.format(hashlib.md5(b"payload").hexdigest())
    got = s3.get_object(Bucket="copy-b", Key="dst")
    assert got["Body"].read() == b"payload"
    assert (got["ContentType"], got["Metadata"], got["CacheControl"], got["ContentLanguage"]) \
        == ("text/csv", {"a": "1"}, "no-cache", "de")


def test_copy_directive_replace(s3):
    s3.put_object(Bucket="copy-a", Key="rep", Body=b"x", ContentType="text/csv",
                  Metadata={"a": "1"}, CacheControl="no-cache")
    s3.copy_object(Bucket="copy-a", Key="rep2", CopySource="copy-a/rep",
                   MetadataDirective="REPLACE", ContentType="application/json",
                   Metadata={"b": "2"})
    head = s3.head_object(Bucket="copy-a", Key="rep2")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"b": "2"})
    assert "CacheControl" not in head  # REPLACE drops what the request does not restate
    assert error_of(s3.copy_object, Bucket="copy-a", Key="rep3", CopySource="copy-a/rep",
                    MetadataDirective="MERGE") == ("InvalidArgument", 400)


def test_copy_onto_itself_changes_metadata_only(s3):
    put = s3.put_object(Bucket="copy-a", Key="self", Body=b"same bytes", Metadata={"v": "1"})
    before = s3.head_object(Bucket="copy-a", Key="self")["LastModified"]
    assert error_of(s3.copy_object, Bucket="copy-a", Key="self",
                    CopySource="copy-a/self") == ("InvalidRequest", 400)
    time.sleep(1.1)  # Last-Modified has one-second resolution
    s3.copy_object(Bucket="copy-a", Key="self", CopySource="copy-a/self",
                   MetadataDirective="REPLACE", Metadata={"v": "2"})
    got = s3.get_object(Bucket="copy-a", Key="self")
    assert got["Body"].read() == b"same bytes" and got["Metadata"] == {"v": "2"}
    assert got["ETag"] == put["ETag"] and got["LastModified"] > before


def test_copy_keys_that_need_encoding_and_checksums(s3):
    key = "dir/ünï côdé+plus&amp?=%"
    put = s3.put_object(Bucket="copy-a", Key=key, Body=b"odd", ChecksumAlgorithm="CRC32C")
    out = s3.copy_object(Bucket="copy-b", Key=key, CopySource={"Bucket": "copy-a", "Key": key})
    assert out["CopyObjectResult"]["ChecksumCRC32C"] == put["ChecksumCRC32C"]
    head = s3.head_object(Bucket="copy-b", Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == put["ChecksumCRC32C"]


def test_copy_errors(s3):
    assert error_of(s3.copy_object, Bucket="copy-a", Key="x",
                    CopySource="copy-a/missing") == ("NoSuchKey", 404)
    assert error_of(s3.copy_object, Bucket="copy-a", Key="x",
                    CopySource="no-such-bucket/k") == ("NoSuchBucket", 404)
    assert error_of(s3.copy_object, Bucket="no-such-bucket", Key="x",
                    CopySource="copy-a/src") == ("NoSuchBucket", 404)


def test_large_copy_between_buckets(s3, big):
    s3.copy_object(Bucket="copy-b", Key="big", CopySource="copy-a/big")
    assert s3.get_object(Bucket="copy-b", Key="big")["Body"].read() == big
    got = s3.get_object(Bucket="copy-b", Key="big", Range="bytes=4194300-4194310")
    assert got["Body"].read() == big[4194300:4194311]


def test_upload_part_copy_ranges(s3, big):
    """Ranges that cut blocks, align with them, and cover the whole source."""
    uid = s3.create_multipart_upload(Bucket="copy-b", Key="assembled")["UploadId"]
    ranges = [(0, 5 * MiB - 1), (4 * MiB, 9 * MiB + 6), (100, 200)]
    etags = []
    for n, (lo, hi) in enumerate(ranges, 1):
        out = s3.upload_part_copy(Bucket="copy-b", Key="assembled", UploadId=uid, PartNumber=n,
                                  CopySource="copy-a/big", CopySourceRange=f"bytes={lo}-{hi}")
        etags.append(out["CopyPartResult"]["ETag"])
    # A range inside one block is read, so its ETag is the MD5 of its bytes; the others
    # reference whole blocks unread (see gateway/copyobject.py for their ETag).
    assert etags[2] == f'"{hashlib.md5(big[100:201]).hexdigest()}"'
    assert len(set(etags)) == 3 and all(len(e) == 34 for e in etags)
    listed = s3.list_parts(Bucket="copy-b", Key="assembled", UploadId=uid)["Parts"]
    assert [p["Size"] for p in listed] == [5 * MiB, 5 * MiB + 7, 101]
    s3.complete_multipart_upload(Bucket="copy-b", Key="assembled", UploadId=uid,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": n, "ETag": e}
                                     for n, e in enumerate(etags, 1)]})
    expected = big[: 5 * MiB] + big[4 * MiB:] + big[100:201]
    assert s3.get_object(Bucket="copy-b", Key="assembled")["Body"].read() == expected


def test_aborting_an_upload_keeps_borrowed_blocks(s3, big):
    """A part that references the source's blocks must not delete them when its upload
    is aborted (or completed without it)."""
    uid = s3.create_multipart_upload(Bucket="copy-b", Key="borrow")["UploadId"]
    s3.upload_part_copy(Bucket="copy-b", Key="borrow", UploadId=uid, PartNumber=1,
                        CopySource="copy-a/big", CopySourceRange=f"bytes=0-{8 * MiB - 1}")
    s3.upload_part_copy(Bucket="copy-b", Key="borrow", UploadId=uid, PartNumber=2,
                        CopySource="copy-a/big")
    s3.abort_multipart_upload(Bucket="copy-b", Key="borrow", UploadId=uid)
    for _ in range(3):  # background deletes would have landed by the later reads
        assert s3.get_object(Bucket="copy-a", Key="big")["Body"].read() == big
        time.sleep(0.5)


def test_upload_part_copy_errors(s3, big):
    uid = s3.create_multipart_upload(Bucket="copy-b", Key="bad")["UploadId"]
    for rng in (f"bytes=0-{len(big)}", "bytes=5-", "bytes=10-5", "0-5"):
        assert error_of(s3.upload_part_copy, Bucket="copy-b", Key="bad", UploadId=uid,
                        PartNumber=1, CopySource="copy-a/big", CopySourceRange=rng) == (
            "InvalidArgument", 400), rng
    assert error_of(s3.upload_part_copy, Bucket="copy-b", Key="bad", UploadId="nope",
                    PartNumber=1, CopySource="copy-a/big") == ("NoSuchUpload", 404)
    assert error_of(s3.upload_part_copy, Bucket="copy-b", Key="bad", UploadId=uid,
                    PartNumber=1, CopySource="copy-a/none") == ("NoSuchKey", 404)
