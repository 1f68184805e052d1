"""Conditional requests: If-* on GET/HEAD, If-Range, conditional writes, copy-source-if-*."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from tests.harness import error_of, http
from tests.s3.util import error_doc

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client(signature_version="s3v4")  # presigned URLs in SigV4 too


@pytest.fixture(scope="module")
def obj(s3):
    s3.create_bucket(Bucket="cond")
    put = s3.put_object(Bucket="cond", Key="k", Body=b"conditional body")
    head = s3.head_object(Bucket="cond", Key="k")
    return put["ETag"], head["LastModified"]


def _date(dt: datetime) -> str:
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def test_if_match_and_if_none_match_on_get_and_head(s3, obj):
    etag, _ = obj
    assert s3.get_object(Bucket="cond", Key="k", IfMatch=etag)["Body"].read() == (
        b"conditional body")
    assert s3.get_object(Bucket="cond", Key="k", IfMatch=etag.strip('"'))  # quotes optional
    assert s3.get_object(Bucket="cond", Key="k", IfMatch=f'"nope", {etag}')  # a list
    assert s3.get_object(Bucket="cond", Key="k", IfMatch="*")
    err = error_doc(s3.get_object, Bucket="cond", Key="k", IfMatch='"0123"')
    assert (err["Code"], err["Status"], err["Condition"]) == ("PreconditionFailed", 412,
                                                             "If-Match")
    assert error_of(s3.head_object, Bucket="cond", Key="k", IfMatch='"0123"') == ("412", 412)
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfNoneMatch=etag) == ("304", 304)
    assert error_of(s3.head_object, Bucket="cond", Key="k", IfNoneMatch=etag) == ("304", 304)
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfNoneMatch="*") == ("304", 304)
    got = s3.get_object(Bucket="cond", Key="k", IfNoneMatch='"other"')
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_not_modified_response_carries_validators_only(cluster, s3, obj):
    etag, _ = obj
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "cond", "Key": "k"})
    status, headers, body = http("GET", url, headers={"If-None-Match": etag})
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 304 and body == b""
    assert headers["etag"] == etag and "last-modified" in headers
    assert "content-type" not in headers


def test_dates(s3, obj):
    _, modified = obj
    before, after = modified - timedelta(days=1), modified + timedelta(days=1)
    assert s3.get_object(Bucket="cond", Key="k", IfModifiedSince=before)
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfModifiedSince=after) == (
        "304", 304)
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfModifiedSince=modified) == (
        "304", 304)  # not modified *since* its own Last-Modified
    assert s3.get_object(Bucket="cond", Key="k", IfUnmodifiedSince=after)
    assert s3.get_object(Bucket="cond", Key="k", IfUnmodifiedSince=modified)
    err = error_doc(s3.get_object, Bucket="cond", Key="k", IfUnmodifiedSince=before)
    assert (err["Code"], err["Status"], err["Condition"]) == ("PreconditionFailed", 412,
                                                             "If-Unmodified-Since")
    assert error_of(s3.head_object, Bucket="cond", Key="k", IfUnmodifiedSince=before) == (
        "412", 412)


def test_precedence_as_s3_documents(cluster, s3, obj):
    etag, modified = obj
    before, after = modified - timedelta(days=1), modified + timedelta(days=1)
    # If-Match true + If-Unmodified-Since false → 200.
    got = s3.get_object(Bucket="cond", Key="k", IfMatch=etag, IfUnmodifiedSince=before)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    # If-None-Match false + If-Modified-Since true → 304.
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfNoneMatch=etag,
                    IfModifiedSince=before) == ("304", 304)
    # If-None-Match true + If-Modified-Since false → 200 (the date is not looked at).
    got = s3.get_object(Bucket="cond", Key="k", IfNoneMatch='"x"', IfModifiedSince=after)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    # 412 wins over 304.
    assert error_of(s3.get_object, Bucket="cond", Key="k", IfMatch='"x"',
                    IfNoneMatch=etag) == ("PreconditionFailed", 412)
    # An unparseable date is ignored.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "cond", "Key": "k"})
    assert http("GET", url, headers={"If-Modified-Since": "yesterday"})[0] == 200


def test_if_range(s3, obj):
    etag, modified = obj
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "cond", "Key": "k"})
    status, headers, body = http("GET", url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert (status, body, headers["content-range"]) == (206, b"cond", "bytes 0-3/16")
    status, _, body = http("GET", url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert (status, body) == (200, b"conditional body")
    status, _, body = http("GET", url, headers={"Range": "bytes=0-3",
                                                "If-Range": _date(modified)})
    assert (status, body) == (206, b"cond")
    old = _date(modified - timedelta(days=1))
    status, _, body = http("GET", url, headers={"Range": "bytes=0-3", "If-Range": old})
    assert (status, body) == (200, b"conditional body")


def test_conditional_put(s3, obj):
    put = s3.put_object(Bucket="cond", Key="once", Body=b"1", IfNoneMatch="*")
    err = error_doc(s3.put_object, Bucket="cond", Key="once", Body=b"2", IfNoneMatch="*")
    assert (err["Code"], err["Status"]) == ("PreconditionFailed", 412)
    big = os.urandom(5 * MiB)  # refused before any block is stored
    assert error_of(s3.put_object, Bucket="cond", Key="once", Body=big, IfNoneMatch="*") == (
        "PreconditionFailed", 412)
    assert s3.get_object(Bucket="cond", Key="once")["Body"].read() == b"1"
    assert error_of(s3.put_object, Bucket="cond", Key="once", Body=b"3",
                    IfMatch='"00000000000000000000000000000000"') == ("PreconditionFailed", 412)
    swapped = s3.put_object(Bucket="cond", Key="once", Body=b"4", IfMatch=put["ETag"])
    assert s3.get_object(Bucket="cond", Key="once")["ETag"] == swapped["ETag"]
    assert error_of(s3.put_object, Bucket="cond", Key="never", Body=b"x",
                    IfMatch=put["ETag"]) == ("NoSuchKey", 404)
    assert error_of(s3.put_object, Bucket="cond", Key="once", Body=b"x",
                    IfNoneMatch=put["ETag"]) == ("NotImplemented", 501)


def test_conditional_complete_multipart(s3, obj):
    s3.put_object(Bucket="cond", Key="mp-exists", Body=b"already")
    uid = s3.create_multipart_upload(Bucket="cond", Key="mp-exists")["UploadId"]
    etag = s3.upload_part(Bucket="cond", Key="mp-exists", UploadId=uid, PartNumber=1,
                          Body=b"part")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    assert error_of(s3.complete_multipart_upload, Bucket="cond", Key="mp-exists",
                    UploadId=uid, MultipartUpload=parts, IfNoneMatch="*") == (
        "PreconditionFailed", 412)
    current = s3.head_object(Bucket="cond", Key="mp-exists")["ETag"]
    done = s3.complete_multipart_upload(Bucket="cond", Key="mp-exists", UploadId=uid,
                                        MultipartUpload=parts, IfMatch=current)
    assert s3.get_object(Bucket="cond", Key="mp-exists")["ETag"] == done["ETag"]


def test_write_racing_a_conditional_put_is_a_409(cluster, s3, obj):
    """A create-only PUT passes its first check, then another writer creates the key while
    its body is still arriving: S3's answer is 409 ConditionalRequestConflict."""
    size = 24 * MiB  # more than loopback socket buffers hold: sendall returns only
    url = s3.generate_presigned_url("put_object", Params={"Bucket": "cond", "Key": "race"})
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(size))
    conn.putheader("If-None-Match", "*")
    conn.endheaders()
    conn.send(b"a" * (size // 2))  # once the gateway reads this, its first check has run
    s3.put_object(Bucket="cond", Key="race", Body=b"the other writer")
    conn.send(b"a" * (size - size // 2))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 409 and b"<Code>ConditionalRequestConflict</Code>" in body
    assert s3.get_object(Bucket="cond", Key="race")["Body"].read() == b"the other writer"


def test_copy_source_conditions(s3, obj):
    etag, modified = obj
    before, after = modified - timedelta(days=1), modified + timedelta(days=1)
    src = {"Bucket": "cond", "Key": "k"}
    ok = s3.copy_object(Bucket="cond", Key="c1", CopySource=src, CopySourceIfMatch=etag,
                        CopySourceIfUnmodifiedSince=before)  # If-Match true wins
    assert ok["CopyObjectResult"]["ETag"] == etag
    for kwargs in ({"CopySourceIfMatch": '"x"'}, {"CopySourceIfNoneMatch": etag},
                   {"CopySourceIfModifiedSince": after},
                   {"CopySourceIfUnmodifiedSince": before},
                   {"CopySourceIfNoneMatch": etag, "CopySourceIfModifiedSince": before}):
        assert error_of(s3.copy_object, Bucket="cond", Key="c2", CopySource=src,
                        **kwargs) == ("PreconditionFailed", 412), kwargs
    assert error_of(s3.head_object, Bucket="cond", Key="c2") == ("404", 404)
    assert s3.copy_object(Bucket="cond", Key="c3", CopySource=src,
                          CopySourceIfNoneMatch='"x"', CopySourceIfModifiedSince=before)
    uid = s3.create_multipart_upload(Bucket="cond", Key="c4")["UploadId"]
    assert error_of(s3.upload_part_copy, Bucket="cond", Key="c4", UploadId=uid, PartNumber=1,
                    CopySource=src, CopySourceIfMatch='"x"') == ("PreconditionFailed", 412)
    part = s3.upload_part_copy(Bucket="cond", Key="c4", UploadId=uid, PartNumber=1,
                               CopySource=src, CopySourceIfMatch=etag)
    assert part["CopyPartResult"]["ETag"] == etag
    # the destination's own If-None-Match on CopyObject
    assert error_of(s3.copy_object, Bucket="cond", Key="c1", CopySource=src,
                    IfNoneMatch="*") == ("PreconditionFailed", 412)
