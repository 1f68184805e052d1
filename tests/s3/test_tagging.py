"""Object and bucket tagging through boto3 on a 6-node cluster, S3's limits included."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.harness import error_of
from tests.s3.signed import signed


@pytest.fixture(scope="module")
def s3(cluster):
    return cluster.client()


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="tags")
    return "tags"




def tag_set(**tags: str) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def tags_of(s3, bucket: str, key: str, **kwargs) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in
            s3.get_object_tagging(Bucket=bucket, Key=key, **kwargs)["TagSet"]}


def test_tags_given_on_put_and_counted_on_get_and_head(s3, bucket):
    s3.put_object(Bucket=bucket, Key="photo", Body=b"jpeg",
                  Tagging="project=blue%20sky&owner=me&empty=")
    assert tags_of(s3, bucket, "photo") == {"project": "blue sky", "owner": "me", "empty": ""}
    assert s3.get_object(Bucket=bucket, Key="photo")["TagCount"] == 3
    head = s3.head_object(Bucket=bucket, Key="photo")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "3"
    s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="plain")
    assert s3.get_object_tagging(Bucket=bucket, Key="plain")["TagSet"] == []


def test_put_replace_and_delete_object_tags(s3, bucket, cluster):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"text", Tagging="a=1")
    out = s3.put_object_tagging(Bucket=bucket, Key="doc", Tagging=tag_set(b="2", c="3"))
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200 and "VersionId" not in out
    assert tags_of(s3, bucket, "doc") == {"b": "2", "c": "3"}
    # Tags are metadata of the version: the body and ETag are untouched.
    got = s3.get_object(Bucket=bucket, Key="doc")
    assert got["Body"].read() == b"text" and got["TagCount"] == 2
    status, _, body = signed(cluster, "GET", f"/{bucket}/doc?tagging")
    assert status == 200 and body.count(b"<Tag>") == 2
    assert b"<Tagging xmlns=" in body and b"<TagSet><Tag><Key>b</Key><Value>2</Value>" in body
    out = s3.delete_object_tagging(Bucket=bucket, Key="doc")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "doc") == {}
    assert error_of(s3.get_object_tagging, Bucket=bucket, Key="missing") == ("NoSuchKey", 404)
    assert error_of(s3.put_object_tagging, Bucket=bucket, Key="missing",
                    Tagging=tag_set(a="1")) == ("NoSuchKey", 404)


@pytest.mark.parametrize("tags, message", [
    ({f"k{i}": "v" for i in range(11)}, b"cannot be greater than 10"),
    ({"k" * 129: "v"}, b"TagKey you have provided is too long"),
    ({"k": "v" * 257}, b"TagValue you have provided is too long"),
    ({"aws:reserved": "v"}, b"cannot be prefixed with aws:"),
    ({"bad<key": "v"}, b"TagKey you have provided is invalid"),
])
def test_invalid_object_tags(s3, bucket, cluster, tags, message):
    s3.put_object(Bucket=bucket, Key="limits", Body=b"x", Tagging="keep=me")
    with pytest.raises(ClientError) as info:
        s3.put_object_tagging(Bucket=bucket, Key="limits", Tagging=tag_set(**tags))
    err = info.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidTag", 400)
    assert message.decode() in err["Error"]["Message"]
    assert tags_of(s3, bucket, "limits") == {"keep": "me"}


def test_limits_at_the_edge_are_accepted(s3, bucket):
    tags = {f"k{i}": "v" for i in range(9)} | {"k" * 128: "v" * 256}
    s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set(**tags))
    assert tags_of(s3, bucket, "plain") == tags


def test_duplicate_keys_and_bad_documents(s3, bucket, cluster):
    s3.put_object(Bucket=bucket, Key="dup", Body=b"x")
    dup = (b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag>"
           b"<Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>")
    empty_key = b"<Tagging><TagSet><Tag><Key></Key><Value>1</Value></Tag></TagSet></Tagging>"
    for invalid in (dup, empty_key):
        status, _, body = signed(cluster, "PUT", f"/{bucket}/dup?tagging", invalid)
        assert status == 400 and b"<Code>InvalidTag</Code>" in body
    for bad in (b"<Tagging><Tag/></Tagging>", b"junk",
                b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>"):
        status, _, body = signed(cluster, "PUT", f"/{bucket}/dup?tagging", bad)
        assert status == 400 and b"<Code>MalformedXML</Code>" in body
    assert tags_of(s3, bucket, "dup") == {}


def test_bad_tagging_header_stores_nothing(s3, bucket):
    many = "&".join(f"k{i}=v" for i in range(11))
    assert error_of(s3.put_object, Bucket=bucket, Key="never", Body=b"x",
                    Tagging=many) == ("InvalidTag", 400)
    assert error_of(s3.head_object, Bucket=bucket, Key="never")[1] == 404
    assert error_of(s3.create_multipart_upload, Bucket=bucket, Key="never",
                    Tagging="aws:x=1") == ("InvalidTag", 400)


def test_multipart_upload_carries_its_tags(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu", Tagging="kind=video")
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"v" * 100)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert tags_of(s3, bucket, "mpu") == {"kind": "video"}


def test_copy_tagging_directive(s3, bucket, cluster):
    s3.put_object(Bucket=bucket, Key="orig", Body=b"data", Tagging="a=1&b=2")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "orig"})
    assert tags_of(s3, bucket, "copy") == {"a": "1", "b": "2"}
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource={"Bucket": bucket, "Key": "orig"},
                   TaggingDirective="REPLACE", Tagging="c=3")
    assert tags_of(s3, bucket, "copy2") == {"c": "3"}
    s3.copy_object(Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": "orig"},
                   TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "copy3") == {}
    status, _, body = signed(cluster, "PUT", f"/{bucket}/copy4",
                             headers={"x-amz-copy-source": f"/{bucket}/orig",
                                      "x-amz-tagging-directive": "MERGE"})
    assert status == 400 and b"<Code>InvalidArgument</Code>" in body
    assert error_of(s3.head_object, Bucket=bucket, Key="copy4")[1] == 404


def test_tags_belong_to_a_version(s3, cluster):
    s3.create_bucket(Bucket="tags-versions")
    s3.put_bucket_versioning(Bucket="tags-versions",
                             VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="tags-versions", Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    v2 = s3.put_object(Bucket="tags-versions", Key="k", Body=b"2", Tagging="v=2")["VersionId"]
    out = s3.put_object_tagging(Bucket="tags-versions", Key="k", VersionId=v1,
                                Tagging=tag_set(v="one"))
    assert out["VersionId"] == v1
    got = s3.get_object_tagging(Bucket="tags-versions", Key="k")
    assert got["VersionId"] == v2 and got["TagSet"] == [{"Key": "v", "Value": "2"}]
    assert tags_of(s3, "tags-versions", "k", VersionId=v1) == {"v": "one"}
    s3.put_object_tagging(Bucket="tags-versions", Key="k", Tagging=tag_set(v="two"))
    assert tags_of(s3, "tags-versions", "k", VersionId=v2) == {"v": "two"}
    assert s3.get_object(Bucket="tags-versions", Key="k")["TagCount"] == 1
    # Tagging makes no new version.
    listed = s3.list_object_versions(Bucket="tags-versions")["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in listed] == [(v2, True), (v1, False)]
    assert s3.get_object(Bucket="tags-versions", Key="k", VersionId=v1)["Body"].read() == b"1"
    marker = s3.delete_object(Bucket="tags-versions", Key="k")["VersionId"]
    assert error_of(s3.get_object_tagging, Bucket="tags-versions", Key="k") == (
        "NoSuchKey", 404)
    assert error_of(s3.get_object_tagging, Bucket="tags-versions", Key="k",
                    VersionId=marker) == ("MethodNotAllowed", 405)
    assert error_of(s3.get_object_tagging, Bucket="tags-versions", Key="k",
                    VersionId="0" * 32) == ("NoSuchVersion", 404)


def test_bucket_tagging(s3, cluster):
    s3.create_bucket(Bucket="tags-bucket")
    assert error_of(s3.get_bucket_tagging, Bucket="tags-bucket") == ("NoSuchTagSet", 404)
    out = s3.put_bucket_tagging(Bucket="tags-bucket", Tagging=tag_set(team="infra", env="dev"))
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket="tags-bucket")["TagSet"] == [
        {"Key": "team", "Value": "infra"}, {"Key": "env", "Value": "dev"}]
    fifty = {f"k{i}": str(i) for i in range(50)}
    s3.put_bucket_tagging(Bucket="tags-bucket", Tagging=tag_set(**fifty))
    assert len(s3.get_bucket_tagging(Bucket="tags-bucket")["TagSet"]) == 50
    too_many = fifty | {"k50": "50"}
    assert error_of(s3.put_bucket_tagging, Bucket="tags-bucket",
                    Tagging=tag_set(**too_many)) == ("InvalidTag", 400)
    assert len(s3.get_bucket_tagging(Bucket="tags-bucket")["TagSet"]) == 50
    # Versioning and tags live side by side in the bucket record.
    s3.put_bucket_versioning(Bucket="tags-bucket", VersioningConfiguration={"Status": "Enabled"})
    assert len(s3.get_bucket_tagging(Bucket="tags-bucket")["TagSet"]) == 50
    assert s3.get_bucket_versioning(Bucket="tags-bucket")["Status"] == "Enabled"
    out = s3.delete_bucket_tagging(Bucket="tags-bucket")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.get_bucket_tagging, Bucket="tags-bucket") == ("NoSuchTagSet", 404)
    assert error_of(s3.get_bucket_tagging, Bucket="no-such-bucket") == ("NoSuchBucket", 404)
