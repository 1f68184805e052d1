"""Listings: odd keys, encoding-type=url, fetch-owner, v1 markers, CommonPrefixes order,
ListMultipartUploads paging, GetBucketLocation and GetObjectAttributes."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import pytest

from tests.harness import error_of, http
from tests.s3.util import signed_get

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MiB = 1024 * 1024
ODD_KEYS = ["with space", "plus+sign", "percent%41%", "unicodé/ключ/鍵", "new\nline",
            "cr\rreturn", "tab\there", "amp&lt<gt>", "q'uo\"te", "k" * 1024, "~tilde=eq?"]


@pytest.fixture(scope="module")
def s3(cluster):
    s3 = cluster.client(signature_version="s3v4")
    s3.create_bucket(Bucket="lists")
    for key in ODD_KEYS:
        s3.put_object(Bucket="lists", Key=key, Body=key.encode())
    return s3


def raw_list(s3, **params) -> ElementTree.Element:  # noqa: ANN001
    """ListObjects(V2) through a presigned URL, so botocore decodes nothing for us."""
    url = s3.generate_presigned_url("list_objects_v2" if params.pop("v2", True)
                                    else "list_objects", Params={"Bucket": "lists", **params})
    status, _, body = http("GET", url)
    assert status == 200, body
    return ElementTree.fromstring(body)


def texts(root: ElementTree.Element, path: str) -> list[str]:
    return [e.text or "" for e in root.iter(NS + path)]


def test_odd_keys_list_exactly(s3):
    v2 = [o["Key"] for o in s3.list_objects_v2(Bucket="lists")["Contents"]]
    assert v2 == sorted(ODD_KEYS, key=lambda k: k.encode())
    v1 = [o["Key"] for o in s3.list_objects(Bucket="lists")["Contents"]]
    assert v1 == v2
    for key in ODD_KEYS:
        assert s3.get_object(Bucket="lists", Key=key)["Body"].read() == key.encode()


def test_encoding_type_url(s3):
    root = raw_list(s3, EncodingType="url", Prefix="plus+")
    assert texts(root, "EncodingType") == ["url"]
    assert texts(root, "Prefix") == ["plus%2B"]
    assert texts(root, "Key") == ["plus%2Bsign"]
    root = raw_list(s3, EncodingType="url")
    assert [unquote_plus(k) for k in texts(root, "Key")] == sorted(
        ODD_KEYS, key=lambda k: k.encode())
    assert all("\n" not in k and "\r" not in k for k in texts(root, "Key"))
    v1 = raw_list(s3, v2=False, EncodingType="url", Marker="new\nline", Delimiter="\n",
                  MaxKeys=1)
    assert texts(v1, "Marker") == ["new%0Aline"]
    assert texts(v1, "Delimiter") == ["%0A"]
    assert [unquote_plus(k) for k in texts(v1, "NextMarker")] == ["percent%41%"]
    assert error_of(s3.list_objects_v2, Bucket="lists", EncodingType="base64") == (
        "InvalidArgument", 400)


def test_unencoded_xml_escapes(cluster, s3):
    status, _, body = signed_get(cluster, "/lists?list-type=2&prefix=amp")
    assert status == 200 and b"<Key>amp&amp;lt&lt;gt&gt;</Key>" in body
    assert texts(ElementTree.fromstring(body), "Key") == ["amp&lt<gt>"]


def test_fetch_owner(s3):
    assert "Owner" not in s3.list_objects_v2(Bucket="lists")["Contents"][0]
    owned = s3.list_objects_v2(Bucket="lists", FetchOwner=True)["Contents"][0]
    assert owned["Owner"]["ID"]
    assert s3.list_objects(Bucket="lists")["Contents"][0]["Owner"]["ID"]


def test_common_prefixes_order_and_paging(s3):
    s3.create_bucket(Bucket="prefixes")
    keys = ["a/1", "a+b/1", "a-b/1", "a.b/1", "a/b/2", "a0", "a!", "b/1", "é/1", "z"]
    for key in keys:
        s3.put_object(Bucket="prefixes", Key=key, Body=b"")
    out = s3.list_objects_v2(Bucket="prefixes", Delimiter="/")
    # UTF-8 byte order, as S3: '!' < '+' < '-' < '.' < '/' < '0' ... < 'z' < 'é'.
    assert [c["Prefix"] for c in out["CommonPrefixes"]] == ["a+b/", "a-b/", "a.b/", "a/",
                                                           "b/", "é/"]
    assert [o["Key"] for o in out["Contents"]] == ["a!", "a0", "z"]
    assert out["KeyCount"] == 9
    # Pages count keys and prefixes together, in one merged order.
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="prefixes", Delimiter="/", PaginationConfig={"PageSize": 2}):
        assert page["KeyCount"] <= 2
        seen += [("p", c["Prefix"]) for c in page.get("CommonPrefixes", [])]
        seen += [("k", o["Key"]) for o in page.get("Contents", [])]
    assert sorted(x for _, x in seen) == sorted(
        ["a!", "a+b/", "a-b/", "a.b/", "a/", "a0", "b/", "z", "é/"])
    assert len(seen) == 9
    multi = s3.list_objects_v2(Bucket="prefixes", Delimiter="/1")
    assert [c["Prefix"] for c in multi["CommonPrefixes"]] == ["a+b/1", "a-b/1", "a.b/1",
                                                             "a/1", "b/1", "é/1"]


def test_v1_markers(s3):
    s3.create_bucket(Bucket="markers")
    for key in ["d/1", "d/2", "e", "f/1", "g"]:
        s3.put_object(Bucket="markers", Key=key, Body=b"")
    page = s3.list_objects(Bucket="markers", MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["d/1", "d/2"]
    assert page["IsTruncated"] and "NextMarker" not in page  # only with a delimiter
    page = s3.list_objects(Bucket="markers", Marker="d/2", MaxKeys=2)
    assert page["Marker"] == "d/2" and [o["Key"] for o in page["Contents"]] == ["e", "f/1"]
    page = s3.list_objects(Bucket="markers", Delimiter="/", MaxKeys=2)
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["d/"]
    assert page["NextMarker"] == "e" and page["IsTruncated"]
    page = s3.list_objects(Bucket="markers", Delimiter="/", Marker="d/")
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["f/"]
    assert [o["Key"] for o in page["Contents"]] == ["e", "g"] and not page["IsTruncated"]


def test_list_multipart_uploads_paging(s3):
    s3.create_bucket(Bucket="uploads")
    ids = {}
    for key in ["x/1", "x/2", "y", "y", "z+"]:
        ids.setdefault(key, []).append(
            s3.create_multipart_upload(Bucket="uploads", Key=key)["UploadId"])
    page = s3.list_multipart_uploads(Bucket="uploads", MaxUploads=2)
    assert [u["Key"] for u in page["Uploads"]] == ["x/1", "x/2"] and page["IsTruncated"]
    page = s3.list_multipart_uploads(Bucket="uploads", KeyMarker=page["NextKeyMarker"],
                                     UploadIdMarker=page["NextUploadIdMarker"])
    assert [u["Key"] for u in page["Uploads"]] == ["y", "y", "z+"]
    assert sorted(u["UploadId"] for u in page["Uploads"][:2]) == sorted(ids["y"])
    page = s3.list_multipart_uploads(Bucket="uploads", Delimiter="/")
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == ["x/"]
    assert [u["Key"] for u in page["Uploads"]] == ["y", "y", "z+"]
    assert [u["Key"] for u in s3.list_multipart_uploads(
        Bucket="uploads", Prefix="z")["Uploads"]] == ["z+"]
    url = s3.generate_presigned_url("list_multipart_uploads", Params={
        "Bucket": "uploads", "EncodingType": "url", "Prefix": "z"})
    _, _, body = http("GET", url)
    assert texts(ElementTree.fromstring(body), "Key") == ["z%2B"]


def test_get_bucket_location(s3):
    assert s3.get_bucket_location(Bucket="lists")["LocationConstraint"] is None
    assert error_of(s3.get_bucket_location, Bucket="no-such-bucket") == ("NoSuchBucket", 404)


def test_list_buckets_pages_when_asked(cluster, s3):
    names = ["paged-a", "paged-b", "paged-c", "paged-d", "paged-e"]
    for name in reversed(names):
        s3.create_bucket(Bucket=name)
    whole = s3.list_buckets()
    assert "ContinuationToken" not in whole  # unpaged: every bucket in one answer
    assert set(names) <= {b["Name"] for b in whole["Buckets"]}

    pages = list(s3.get_paginator("list_buckets").paginate(
        Prefix="paged-", PaginationConfig={"PageSize": 2}))
    assert [[b["Name"] for b in p["Buckets"]] for p in pages] == [names[:2], names[2:4],
                                                                   names[4:]]
    assert [p.get("Prefix") for p in pages] == ["paged-"] * 3
    assert ["ContinuationToken" in p for p in pages] == [True, True, False]
    assert {b["BucketRegion"] for p in pages for b in p["Buckets"]} == {"us-east-1"}
    assert s3.list_buckets(Prefix="paged-", BucketRegion="eu-west-1")["Buckets"] == []
    here = s3.list_buckets(Prefix="paged-", BucketRegion="us-east-1")["Buckets"]
    assert [b["Name"] for b in here] == names

    for query in ("max-buckets=0", "max-buckets=10001", "max-buckets=two",
                  "continuation-token=%25%25%25"):
        status, _, body = signed_get(cluster, f"/?{query}")
        assert status == 400 and b"<Code>InvalidArgument</Code>" in body, query


def test_get_object_attributes(s3):
    data = os.urandom(1000)
    s3.put_object(Bucket="lists", Key="attrs", Body=data, ChecksumAlgorithm="CRC32")
    out = s3.get_object_attributes(Bucket="lists", Key="attrs", ObjectAttributes=[
        "ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
    assert out["ETag"] == hashlib.md5(data).hexdigest()  # no quotes, as S3
    assert out["ObjectSize"] == 1000 and out["StorageClass"] == "STANDARD"
    assert out["Checksum"]["ChecksumType"] == "FULL_OBJECT"
    assert "ObjectParts" not in out and "LastModified" in out
    only = s3.get_object_attributes(Bucket="lists", Key="attrs", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only and only["ObjectSize"] == 1000
    assert error_of(s3.get_object_attributes, Bucket="lists", Key="nope",
                    ObjectAttributes=["ETag"]) == ("NoSuchKey", 404)
    assert error_of(s3.get_object_attributes, Bucket="lists", Key="attrs",
                    ObjectAttributes=["Colour"]) == ("InvalidArgument", 400)


def test_get_object_attributes_parts(s3):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"end"]
    uid = s3.create_multipart_upload(Bucket="lists", Key="mp-attrs",
                                     ChecksumAlgorithm="SHA256")["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        out = s3.upload_part(Bucket="lists", Key="mp-attrs", UploadId=uid, PartNumber=n,
                             Body=data, ChecksumAlgorithm="SHA256")
        done.append({"PartNumber": n, "ETag": out["ETag"], "ChecksumSHA256": out[
            "ChecksumSHA256"]})
    s3.complete_multipart_upload(Bucket="lists", Key="mp-attrs", UploadId=uid,
                                 MultipartUpload={"Parts": done})
    out = s3.get_object_attributes(Bucket="lists", Key="mp-attrs", MaxParts=2,
                                   ObjectAttributes=["ObjectParts", "Checksum", "ETag"])
    section = out["ObjectParts"]
    assert section["TotalPartsCount"] == 3 and section["IsTruncated"]
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in section["Parts"]] == [
        (1, 5 * MiB, done[0]["ChecksumSHA256"]), (2, 5 * MiB, done[1]["ChecksumSHA256"])]
    assert out["ETag"].endswith("-3") and out["Checksum"]["ChecksumType"] == "COMPOSITE"
    rest = s3.get_object_attributes(Bucket="lists", Key="mp-attrs", PartNumberMarker=2,
                                    ObjectAttributes=["ObjectParts"])
    assert [p["PartNumber"] for p in rest["ObjectParts"]["Parts"]] == [3]
