"""Versioning through boto3 on a 6-node cluster: statuses, headers and XML fields as S3."""

from __future__ import annotations

import re
import threading
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.s3.signed import signed

NO_VERSION = "0" * 32  # well formed, never issued


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client()


def make_bucket(s3, name: str, status: str | None = "Enabled") -> str:
    s3.create_bucket(Bucket=name)
    if status:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    return name


def error_of(call, **kwargs) -> tuple[str, int, dict]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"],
            err["ResponseMetadata"]["HTTPHeaders"])


def versions_of(cluster, bucket: str, query: str = "") -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) in document order (boto3 splits
    Versions from DeleteMarkers, losing the order S3 gives: key, then newest first)."""
    status, _, body = signed(cluster, "GET", f"/{bucket}?versions{query}")
    assert status == 200, body
    rows = []
    for entry in ElementTree.fromstring(body):
        tag = entry.tag.split("}")[1]
        if tag in ("Version", "DeleteMarker"):
            field = {child.tag.split("}")[1]: child.text for child in entry}
            rows.append((field["Key"], field["VersionId"], field["IsLatest"] == "true",
                         tag == "DeleteMarker"))
    return rows


def test_bucket_versioning_configuration(s3, cluster):
    bucket = make_bucket(s3, "ver-config", status=None)
    got = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in got and "MFADelete" not in got
    status, _, body = signed(cluster, "GET", f"/{bucket}?versioning")
    assert status == 200
    assert re.search(rb"<VersioningConfiguration xmlns=\"[^\"]+\">\s*</VersioningConfiguration>",
                     body)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    _, _, body = signed(cluster, "GET", f"/{bucket}?versioning")
    assert b"<Status>Suspended</Status>" in body


@pytest.mark.parametrize("body", [
    b"not xml",
    b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
    b"<Versioning><Status>Enabled</Status></Versioning>",
    b"<VersioningConfiguration><MfaDelete>Maybe</MfaDelete></VersioningConfiguration>",
])
def test_bad_versioning_documents_are_malformed_xml(s3, cluster, body):
    bucket = "ver-config-bad"
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        make_bucket(s3, bucket, status=None)
    status, _, answer = signed(cluster, "PUT", f"/{bucket}?versioning", body)
    assert status == 400 and b"<Code>MalformedXML</Code>" in answer
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_mfa_delete_is_not_implemented(s3):
    bucket = make_bucket(s3, "ver-mfa", status=None)
    code, status, _ = error_of(s3.put_bucket_versioning, Bucket=bucket,
                               VersioningConfiguration={"Status": "Enabled",
                                                        "MFADelete": "Enabled"})
    assert (code, status) == ("NotImplemented", 501)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_versions_on_write_and_reads_by_version_id(s3, cluster):
    bucket = make_bucket(s3, "ver-reads")
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"two, longer")["VersionId"]
    assert v1 != v2 and v1 != "null" and v2 != "null"
    got = s3.get_object(Bucket=bucket, Key="doc")
    assert (got["Body"].read(), got["VersionId"]) == (b"two, longer", v2)
    old = s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert (old["Body"].read(), old["VersionId"], old["ContentLength"]) == (b"one", v1, 3)
    head = s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert (head["VersionId"], head["ContentLength"]) == (v1, 3)
    code, status, _ = error_of(s3.get_object, Bucket=bucket, Key="doc", VersionId=NO_VERSION)
    assert (code, status) == ("NoSuchVersion", 404)
    code, status, _ = error_of(s3.get_object, Bucket=bucket, Key="doc", VersionId="bogus")
    assert (code, status) == ("InvalidArgument", 400)
    assert error_of(s3.head_object, Bucket=bucket, Key="doc", VersionId=NO_VERSION)[1] == 404
    assert [(r[1], r[2]) for r in versions_of(cluster, bucket)] == [(v2, True), (v1, False)]


def test_delete_marker(s3, cluster):
    bucket = make_bucket(s3, "ver-marker")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert gone["DeleteMarker"] is True and gone["ResponseMetadata"]["HTTPStatusCode"] == 204
    marker = gone["VersionId"]
    assert marker not in (v1, "null")
    code, status, headers = error_of(s3.get_object, Bucket=bucket, Key="k")
    assert (code, status) == ("NoSuchKey", 404)
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    code, status, headers = error_of(s3.head_object, Bucket=bucket, Key="k")
    assert status == 404 and headers["x-amz-delete-marker"] == "true"
    status, headers, body = signed(cluster, "GET", f"/{bucket}/k?versionId={marker}")
    assert status == 405 and b"<Code>MethodNotAllowed</Code>" in body
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert "Contents" not in s3.list_objects(Bucket=bucket)
    assert versions_of(cluster, bucket) == [("k", marker, True, True), ("k", v1, False, False)]
    # The old version is still readable by id; removing the marker brings it back.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"kept"
    undone = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert undone["DeleteMarker"] is True and undone["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == v1
    assert versions_of(cluster, bucket) == [("k", v1, True, False)]


def test_delete_version_removes_it_for_good(s3, cluster):
    bucket = make_bucket(s3, "ver-permanent")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    v3 = s3.put_object(Bucket=bucket, Key="k", Body=b"3")["VersionId"]
    out = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert out["VersionId"] == v2 and "DeleteMarker" not in out
    assert error_of(s3.get_object, Bucket=bucket, Key="k", VersionId=v2)[:2] == (
        "NoSuchVersion", 404)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v3)  # the current one
    got = s3.get_object(Bucket=bucket, Key="k")
    assert (got["Body"].read(), got["VersionId"]) == (b"1", v1)
    assert versions_of(cluster, bucket) == [("k", v1, True, False)]
    # S3 answers 204 for a version that does not exist, naming it.
    out = s3.delete_object(Bucket=bucket, Key="k", VersionId=NO_VERSION)
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204 and out["VersionId"] == NO_VERSION
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert error_of(s3.get_object, Bucket=bucket, Key="k")[:2] == ("NoSuchKey", 404)
    assert versions_of(cluster, bucket) == []


def test_unversioned_then_enabled_keeps_the_null_version(s3, cluster):
    bucket = make_bucket(s3, "ver-legacy", status=None)
    put = s3.put_object(Bucket=bucket, Key="old", Body=b"before")
    assert "VersionId" not in put
    got = s3.get_object(Bucket=bucket, Key="old")
    assert "VersionId" not in got
    assert s3.get_object(Bucket=bucket, Key="old", VersionId="null")["Body"].read() == b"before"
    assert versions_of(cluster, bucket) == [("old", "null", True, False)]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.head_object(Bucket=bucket, Key="old")["VersionId"] == "null"
    v1 = s3.put_object(Bucket=bucket, Key="old", Body=b"after")["VersionId"]
    assert versions_of(cluster, bucket) == [("old", v1, True, False), ("old", "null", False, False)]
    assert s3.get_object(Bucket=bucket, Key="old", VersionId="null")["Body"].read() == b"before"
    s3.delete_object(Bucket=bucket, Key="old", VersionId="null")
    assert versions_of(cluster, bucket) == [("old", v1, True, False)]


def test_suspended_writes_overwrite_the_null_version(s3, cluster):
    bucket = make_bucket(s3, "ver-suspended")
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"versioned")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"null 1")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"null 2")["VersionId"] == "null"
    assert versions_of(cluster, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null 2"
    gone = s3.delete_object(Bucket=bucket, Key="k")
    assert (gone["DeleteMarker"], gone["VersionId"]) == (True, "null")
    # The null delete marker replaced the null version; v1 is untouched.
    assert versions_of(cluster, bucket) == [("k", "null", True, True), ("k", v1, False, False)]
    assert error_of(s3.get_object, Bucket=bucket, Key="k", VersionId="null")[:2] == (
        "MethodNotAllowed", 405)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"again")["VersionId"]
    assert [r[1] for r in versions_of(cluster, bucket)] == [v2, "null", v1]


def test_multipart_and_copy_make_versions(s3):
    bucket = make_bucket(s3, "ver-mpu-copy")
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1,
                          Body=b"p" * 1000)["ETag"]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mpu", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert re.fullmatch(r"[0-9a-f]{32}", done["VersionId"])
    assert s3.head_object(Bucket=bucket, Key="mpu")["VersionId"] == done["VersionId"]
    copied = s3.copy_object(Bucket=bucket, Key="restored",
                            CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert copied["CopySourceVersionId"] == v1
    assert copied["VersionId"] not in (v1, "null")
    assert s3.get_object(Bucket=bucket, Key="restored")["Body"].read() == b"first"
    # Copying an old version onto its own key restores it as a new version.
    back = s3.copy_object(Bucket=bucket, Key="src",
                          CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1})
    assert s3.get_object(Bucket=bucket, Key="src")["VersionId"] == back["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"first"
    marker = s3.delete_object(Bucket=bucket, Key="src")["VersionId"]
    code, status, _ = error_of(s3.copy_object, Bucket=bucket, Key="x",
                               CopySource={"Bucket": bucket, "Key": "src"})
    assert (code, status) == ("NoSuchKey", 404)
    code, status, _ = error_of(s3.copy_object, Bucket=bucket, Key="x",
                               CopySource={"Bucket": bucket, "Key": "src",
                                           "VersionId": marker})
    assert (code, status) == ("InvalidRequest", 400)


def test_list_object_versions_markers_prefix_delimiter(s3, cluster):
    bucket = make_bucket(s3, "ver-list")
    written: dict[str, list[str]] = {}
    for key in ["a", "b/1", "b/2", "c d", "ü"]:
        for n in range(2):
            vid = s3.put_object(Bucket=bucket, Key=key, Body=f"{key}{n}".encode())["VersionId"]
            written.setdefault(key, []).insert(0, vid)
    marker = s3.delete_object(Bucket=bucket, Key="a")["VersionId"]
    written["a"].insert(0, marker)
    expected = [(k, v, i == 0) for k in sorted(written, key=str.encode)
                for i, v in enumerate(written[k])]
    assert [(k, v, latest) for k, v, latest, _ in versions_of(cluster, bucket)] == expected
    # Page through two at a time with the markers S3 hands back.
    seen, kwargs = [], {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kwargs)
        query = "&max-keys=2" + "".join(
            f"&{name}={quote(kwargs[arg])}" for name, arg in
            (("key-marker", "KeyMarker"), ("version-id-marker", "VersionIdMarker"))
            if arg in kwargs)
        rows = [(k, v, latest) for k, v, latest, _ in versions_of(cluster, bucket, query)]
        assert 1 <= len(rows) <= 2 and page["MaxKeys"] == 2
        assert len(page.get("Versions", [])) + len(page.get("DeleteMarkers", [])) == len(rows)
        seen += rows
        if not page["IsTruncated"]:
            break
        assert (page["NextKeyMarker"], page["NextVersionIdMarker"]) == rows[-1][:2]
        kwargs = {"KeyMarker": page["NextKeyMarker"],
                  "VersionIdMarker": page["NextVersionIdMarker"]}
    assert seen == expected
    assert versions_of(cluster, bucket, "&key-marker=a")[0][:3] == ("b/1", written["b/1"][0],
                                                                    True)
    folded = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in folded["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in folded["Versions"]} == {"a", "c d", "ü"}
    assert [m["Key"] for m in folded["DeleteMarkers"]] == ["a"]
    under = s3.list_object_versions(Bucket=bucket, Prefix="b/")
    assert [(v["Key"], v["IsLatest"]) for v in under["Versions"]] == [
        ("b/1", True), ("b/1", False), ("b/2", True), ("b/2", False)]
    status, _, body = signed(cluster, "GET", f"/{bucket}?versions&encoding-type=url&prefix=c")
    assert status == 200 and b"<Key>c%20d</Key>" in body and b"<EncodingType>url" in body
    assert re.search(rb"<ListVersionsResult xmlns=", body)
    status, _, body = signed(cluster, "GET", f"/{bucket}?versions&version-id-marker={marker}")
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    # ListObjects shows current versions only, never delete markers.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "b/1", "b/2", "c d", "ü"]


def test_delete_objects_with_version_ids(s3, cluster):
    bucket = make_bucket(s3, "ver-multi-delete")
    v1 = s3.put_object(Bucket=bucket, Key="x", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="x", Body=b"2")["VersionId"]
    y = s3.put_object(Bucket=bucket, Key="y", Body=b"y")["VersionId"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "x", "VersionId": v1}, {"Key": "y"}, {"Key": "x", "VersionId": "bad id"}]})
    deleted = {(d["Key"], d.get("VersionId")): d for d in out["Deleted"]}
    assert set(deleted) == {("x", v1), ("y", None)}
    assert "DeleteMarker" not in deleted[("x", v1)]
    marker = deleted[("y", None)]["DeleteMarkerVersionId"]
    assert deleted[("y", None)]["DeleteMarker"] is True and re.fullmatch(r"[0-9a-f]{32}", marker)
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in out["Errors"]] == [
        ("x", "bad id", "InvalidArgument")]
    assert versions_of(cluster, bucket) == [
        ("x", v2, True, False), ("y", marker, True, True), ("y", y, False, False)]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Quiet": True, "Objects": [
        {"Key": "y", "VersionId": marker}]})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.get_object(Bucket=bucket, Key="y")["VersionId"] == y


def test_delete_bucket_needs_no_versions_or_markers(s3):
    bucket = make_bucket(s3, "ver-drop")
    vid = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert error_of(s3.delete_bucket, Bucket=bucket)[:2] == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=vid)
    assert error_of(s3.delete_bucket, Bucket=bucket)[:2] == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    s3.delete_bucket(Bucket=bucket)
    assert error_of(s3.head_bucket, Bucket=bucket)[1] == 404


def test_concurrent_puts_all_become_versions(s3, cluster):
    """S3 keeps every version when writes of one key race; none may be lost."""
    bucket = make_bucket(s3, "ver-race")
    ids: list[str] = []

    def put(n: int) -> None:
        ids.append(s3.put_object(Bucket=bucket, Key="hot", Body=b"%d" % n)["VersionId"])

    threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = versions_of(cluster, bucket)
    assert sorted(v for _, v, _, _ in listed) == sorted(ids) and len(set(ids)) == 8
    assert [latest for _, _, latest, _ in listed] == [True] + [False] * 7
    assert s3.get_object(Bucket=bucket, Key="hot")["VersionId"] == listed[0][1]


def test_a_bucket_change_is_seen_by_the_next_request_on_the_same_gateway(s3):
    """The gateway caches bucket records briefly; its own changes must not wait for that."""
    s3.create_bucket(Bucket="turned-on")
    s3.put_object(Bucket="turned-on", Key="before", Body=b"x")  # the record is cached now
    s3.put_bucket_versioning(Bucket="turned-on",
                             VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket="turned-on", Key="after", Body=b"y")
    assert put.get("VersionId") not in (None, "null")
    s3.put_bucket_tagging(Bucket="turned-on", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    assert s3.get_bucket_tagging(Bucket="turned-on")["TagSet"] == [{"Key": "k", "Value": "v"}]
