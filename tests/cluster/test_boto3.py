"""boto3 (current release, default settings) against a 6-node, 3-zone cluster."""

from __future__ import annotations

import hashlib
import io
import os

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from tests.harness import error_of, http

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client()


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="boto")
    return "boto"




def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="life-cycle")
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-cycle")
    assert error_of(s3.create_bucket, Bucket="life-cycle") == ("BucketAlreadyOwnedByYou", 409)
    s3.put_object(Bucket="life-cycle", Key="k", Body=b"x")
    assert error_of(s3.delete_bucket, Bucket="life-cycle") == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="life-cycle", Key="k")
    s3.delete_bucket(Bucket="life-cycle")
    assert "life-cycle" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert error_of(s3.head_bucket, Bucket="life-cycle") == ("404", 404)


@pytest.mark.parametrize("name", ["ab", "UPPER", "has_underscore", "-dash", "a..b",
                                  "192.168.1.1", "x" * 64])
def test_invalid_bucket_names(s3, name):
    assert error_of(s3.create_bucket, Bucket=name) == ("InvalidBucketName", 400)


def test_put_get_roundtrip_with_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="meta/obj.txt", Body=b"hello shoal",
                  ContentType="text/plain", Metadata={"colour": "blue", "n": "1"},
                  CacheControl="max-age=60", ContentDisposition="inline")
    got = s3.get_object(Bucket=bucket, Key="meta/obj.txt")
    assert got["Body"].read() == b"hello shoal"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"colour": "blue", "n": "1"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == "inline"
    assert got["ETag"] == '"{}"'.format(hashlib.md5(b"hello shoal").hexdigest())
    head = s3.head_object(Bucket=bucket, Key="meta/obj.txt")
    assert head["ContentLength"] == 11 and head["Metadata"]["colour"] == "blue"


@pytest.mark.parametrize("size", [0, 1, 32 * 1024, 32 * 1024 + 1, 4 * MiB, 9 * MiB + 7])
def test_sizes_around_inline_and_block_boundaries(s3, bucket, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key=f"size/{size}", Body=data)
    assert s3.get_object(Bucket=bucket, Key=f"size/{size}")["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=f"size/{size}")["ContentLength"] == size


def test_default_checksums_are_verified_and_returned(s3, bucket):
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="ck", Body=data, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"]
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumSHA256"] == put["ChecksumSHA256"]
    crc = s3.put_object(Bucket=bucket, Key="ck32", Body=data, ChecksumAlgorithm="CRC32C")
    assert crc["ChecksumCRC32C"] == s3.head_object(
        Bucket=bucket, Key="ck32", ChecksumMode="ENABLED")["ChecksumCRC32C"]


def test_ranges(s3, bucket):
    data = os.urandom(9 * MiB)
    s3.put_object(Bucket=bucket, Key="ranged", Body=data)
    for rng, (lo, hi) in {
        "bytes=0-0": (0, 1),
        "bytes=4194300-4194310": (4194300, 4194311),  # straddles a block boundary
        f"bytes={8 * MiB}-": (8 * MiB, 9 * MiB),
        "bytes=-1000": (9 * MiB - 1000, 9 * MiB),
        f"bytes=5-{20 * MiB}": (5, 9 * MiB),
    }.items():
        got = s3.get_object(Bucket=bucket, Key="ranged", Range=rng)
        assert got["Body"].read() == data[lo:hi], rng
        assert got["ContentRange"] == f"bytes {lo}-{hi - 1}/{len(data)}"
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert error_of(s3.get_object, Bucket=bucket, Key="ranged",
                    Range=f"bytes={9 * MiB}-") == ("InvalidRange", 416)


def test_missing_bucket_and_key(s3, bucket):
    assert error_of(s3.get_object, Bucket="no-such-bucket", Key="k") == ("NoSuchBucket", 404)
    assert error_of(s3.put_object, Bucket="no-such-bucket", Key="k", Body=b"") == (
        "NoSuchBucket", 404)
    assert error_of(s3.get_object, Bucket=bucket, Key="no/such/key") == ("NoSuchKey", 404)
    assert error_of(s3.list_objects_v2, Bucket="no-such-bucket") == ("NoSuchBucket", 404)
    assert error_of(s3.head_object, Bucket=bucket, Key="nope") == ("404", 404)


def test_bad_credentials_change_nothing(cluster, s3, bucket):
    bad = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                       aws_access_key_id=cluster.access_key, aws_secret_access_key="wrong",
                       config=Config(s3={"addressing_style": "path"},
                                     retries={"max_attempts": 1}))
    assert error_of(bad.put_object, Bucket=bucket, Key="evil", Body=b"x") == (
        "SignatureDoesNotMatch", 403)
    assert error_of(bad.list_buckets) == ("SignatureDoesNotMatch", 403)
    unknown = boto3.client("s3", endpoint_url=cluster.endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIDUNKNOWN", aws_secret_access_key="x",
                           config=Config(s3={"addressing_style": "path"},
                                         retries={"max_attempts": 1}))
    assert error_of(unknown.list_buckets) == ("InvalidAccessKeyId", 403)
    assert error_of(s3.head_object, Bucket=bucket, Key="evil") == ("404", 404)
    status, _, body = http("GET", f"{cluster.endpoint}/{bucket}")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_bad_digest_leaves_nothing(s3, bucket):
    data = b"some bytes"
    wrong_md5 = "1B2M2Y8AsgTpgAmY7PhCfg=="  # MD5 of the empty string
    assert error_of(s3.put_object, Bucket=bucket, Key="digest", Body=data,
                    ContentMD5=wrong_md5) == ("BadDigest", 400)
    big = os.urandom(6 * MiB)
    assert error_of(s3.put_object, Bucket=bucket, Key="digest-big", Body=big,
                    ContentMD5=wrong_md5) == ("BadDigest", 400)
    assert error_of(s3.put_object, Bucket=bucket, Key="crc", Body=data,
                    ChecksumCRC32="AAAAAA==") == ("BadDigest", 400)
    for key in ("digest", "digest-big", "crc"):
        assert error_of(s3.head_object, Bucket=bucket, Key=key) == ("404", 404)


def test_paginated_listing_with_delimiter(s3):
    s3.create_bucket(Bucket="listing")
    keys = [f"dir{d}/file{f:03d}" for d in range(3) for f in range(40)]
    keys += [f"top{i:02d}" for i in range(25)] + ["dir1/sub/deep"]
    for k in keys:
        s3.put_object(Bucket="listing", Key=k, Body=k.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="listing", PaginationConfig={"PageSize": 7})
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert listed == sorted(keys)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 5})
    files, prefixes = [], []
    for p in pages:
        files += [o["Key"] for o in p.get("Contents", [])]
        prefixes += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
    assert prefixes == ["dir0/", "dir1/", "dir2/"]
    assert files == [f"top{i:02d}" for i in range(25)]
    sub = s3.list_objects_v2(Bucket="listing", Prefix="dir1/", Delimiter="/")
    assert [c["Prefix"] for c in sub["CommonPrefixes"]] == ["dir1/sub/"]
    assert len(sub["Contents"]) == 40
    after = s3.list_objects_v2(Bucket="listing", StartAfter="top20")
    assert [o["Key"] for o in after["Contents"]] == [f"top{i:02d}" for i in range(21, 25)]
    v1 = s3.get_paginator("list_objects").paginate(
        Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 4})
    v1_prefixes = [c["Prefix"] for p in v1 for c in p.get("CommonPrefixes", [])]
    assert v1_prefixes == ["dir0/", "dir1/", "dir2/"]
    assert s3.list_objects_v2(Bucket="listing", MaxKeys=0)["KeyCount"] == 0


def test_upload_and_download_fileobj_multipart(s3, bucket):
    data = os.urandom(23 * MiB + 5)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_fileobj(io.BytesIO(data), bucket, "mp/obj", Config=config)
    out = io.BytesIO()
    s3.download_fileobj(bucket, "mp/obj", out, Config=config)
    assert out.getvalue() == data
    head = s3.head_object(Bucket=bucket, Key="mp/obj")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')


def test_multipart_api(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu", ContentType="video/mp4",
                                    Metadata={"a": "b"})
    uid = up["UploadId"]
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    etags = [s3.upload_part(Bucket=bucket, Key="mpu", UploadId=uid, PartNumber=i + 1,
                            Body=p)["ETag"] for i, p in enumerate(parts)]
    listed = s3.list_parts(Bucket=bucket, Key="mpu", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 5 * MiB), (2, 5 * MiB), (3, 4)]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert uid in [u["UploadId"] for u in uploads]
    assert error_of(s3.get_object, Bucket=bucket, Key="mpu") == ("NoSuchKey", 404)
    bad = [{"PartNumber": 1, "ETag": etags[1]}]
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="mpu", UploadId=uid,
                    MultipartUpload={"Parts": bad}) == ("InvalidPart", 400)
    order = [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]
    assert error_of(s3.complete_multipart_upload, Bucket=bucket, Key="mpu", UploadId=uid,
                    MultipartUpload={"Parts": order}) == ("InvalidPartOrder", 400)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mpu", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                   for i, e in enumerate(etags)]})
    md5s = b"".join(hashlib.md5(p).digest() for p in parts)
    assert done["ETag"] == f'"{hashlib.md5(md5s).hexdigest()}-3"'
    got = s3.get_object(Bucket=bucket, Key="mpu")
    assert got["Body"].read() == b"".join(parts)
    assert got["ContentType"] == "video/mp4" and got["Metadata"] == {"a": "b"}
    assert error_of(s3.list_parts, Bucket=bucket, Key="mpu", UploadId=uid) == (
        "NoSuchUpload", 404)


def test_abort_multipart(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=1, Body=b"x" * 1000)
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=uid)
    assert error_of(s3.upload_part, Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=2,
                    Body=b"y") == ("NoSuchUpload", 404)
    assert uid not in [u["UploadId"] for u in
                       s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert error_of(s3.head_object, Bucket=bucket, Key="aborted") == ("404", 404)


def test_copy_object(s3, bucket):
    data = os.urandom(5 * MiB)
    s3.put_object(Bucket=bucket, Key="copy/src", Body=data, ContentType="image/png",
                  Metadata={"k": "v"})
    s3.create_bucket(Bucket="copy-dest")
    s3.copy_object(Bucket="copy-dest", Key="dst", CopySource={"Bucket": bucket,
                                                               "Key": "copy/src"})
    got = s3.get_object(Bucket="copy-dest", Key="dst")
    assert got["Body"].read() == data
    assert got["ContentType"] == "image/png" and got["Metadata"] == {"k": "v"}
    s3.copy_object(Bucket=bucket, Key="copy/src", CopySource=f"{bucket}/copy/src",
                   MetadataDirective="REPLACE", Metadata={"new": "1"}, ContentType="text/x")
    head = s3.head_object(Bucket=bucket, Key="copy/src")
    assert head["Metadata"] == {"new": "1"} and head["ContentType"] == "text/x"
    assert error_of(s3.copy_object, Bucket=bucket, Key="copy/src",
                    CopySource=f"{bucket}/copy/src") == ("InvalidRequest", 400)
    assert error_of(s3.copy_object, Bucket=bucket, Key="x",
                    CopySource=f"{bucket}/no-such") == ("NoSuchKey", 404)


def test_delete_objects(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"del/{i}", Body=b"d")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": f"del/{i}"} for i in range(5)] + [{"Key": "del/never-existed"}]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(
        [f"del/{i}" for i in range(5)] + ["del/never-existed"])
    assert s3.list_objects_v2(Bucket=bucket, Prefix="del/")["KeyCount"] == 0
    s3.delete_object(Bucket=bucket, Key="del/never-existed")  # idempotent: 204


def test_odd_keys(s3, bucket):
    keys = ["with space", "plus+sign", "percent%41", "unicodé/ключ/鍵", "tilde~eq=amp&",
            "a" * 1024, "new\nline", "trailing/"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    assert error_of(s3.put_object, Bucket=bucket, Key="a" * 1025, Body=b"") == (
        "KeyTooLongError", 400)


def test_malformed_xml_and_unsupported(cluster, s3, bucket):
    assert error_of(s3.put_bucket_lifecycle_configuration, Bucket=bucket,
                    LifecycleConfiguration={"Rules": [{
                        "ID": "expire", "Status": "Enabled", "Filter": {"Prefix": ""},
                        "Expiration": {"Days": 1}}]}) == ("NotImplemented", 501)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="xml")["UploadId"]
    v4 = cluster.client(signature_version="s3v4")  # presigned: the body stays ours to break
    signed = v4.generate_presigned_url(
        "complete_multipart_upload", Params={"Bucket": bucket, "Key": "xml", "UploadId": uid})
    status, _, body = http("POST", signed, data=b"<CompleteMultipartUpload><Part>")
    assert status == 400 and b"<Code>MalformedXML</Code>" in body
