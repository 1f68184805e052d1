"""ACLs as S3 serves them with ACLs disabled (its default): reads show the owner's full
control; a write that asks for more is AccessControlListNotSupported and changes
nothing; one that asks for what already holds is accepted."""

from __future__ import annotations

import pytest

from tests.harness import http
from tests.s3.util import client_with_object, error_doc, signed_get

OWNER = {"ID": "shoal", "DisplayName": "shoal"}
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


@pytest.fixture(scope="module")
def s3(cluster):
    return client_with_object(cluster, "acls", b"mine")


def policy(*grants: dict) -> dict:
    return {"Owner": {"ID": "shoal"}, "Grants": list(grants)}


def owner_full_control() -> dict:
    return {"Grantee": {"ID": "shoal", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}


def test_reads_show_the_owner_full_control(s3):
    grant = [{"Grantee": {**OWNER, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}]
    for got in (s3.get_bucket_acl(Bucket="acls"), s3.get_object_acl(Bucket="acls", Key="k")):
        assert (got["Owner"], got["Grants"]) == (OWNER, grant)
    assert error_doc(s3.get_object_acl, Bucket="acls", Key="absent")["Code"] == "NoSuchKey"
    assert error_doc(s3.get_bucket_acl, Bucket="no-such-acls")["Code"] == "NoSuchBucket"


def test_writes_asking_for_what_holds_are_accepted(s3):
    s3.put_bucket_acl(Bucket="acls", ACL="private")
    s3.put_bucket_acl(Bucket="acls", AccessControlPolicy=policy(owner_full_control()))
    s3.put_object_acl(Bucket="acls", Key="k", ACL="bucket-owner-full-control")
    s3.put_object_acl(Bucket="acls", Key="k", AccessControlPolicy=policy(owner_full_control()))
    s3.put_object(Bucket="acls", Key="private", Body=b"p", ACL="private")
    s3.put_object(Bucket="acls", Key="owner", Body=b"o", ACL="bucket-owner-full-control")
    assert s3.get_object(Bucket="acls", Key="private")["Body"].read() == b"p"


def test_writes_granting_more_are_refused_and_change_nothing(cluster, s3):
    public = {"Grantee": {"URI": ALL_USERS, "Type": "Group"}, "Permission": "READ"}
    source = {"Bucket": "acls", "Key": "k"}
    for call, args in (
            (s3.put_object, {"Key": "new", "Body": b"x", "ACL": "public-read"}),
            (s3.put_object, {"Key": "new", "Body": b"x", "GrantRead": f'uri="{ALL_USERS}"'}),
            (s3.copy_object, {"Key": "new", "CopySource": source, "ACL": "public-read"}),
            (s3.create_multipart_upload, {"Key": "new", "ACL": "authenticated-read"}),
            (s3.put_object_acl, {"Key": "k", "ACL": "public-read"}),
            (s3.put_object_acl, {"Key": "k",
                                 "AccessControlPolicy": policy(owner_full_control(), public)}),
            (s3.put_bucket_acl, {"ACL": "public-read-write"}),
            (s3.put_bucket_acl, {"AccessControlPolicy": policy(public)})):
        err = error_doc(call, Bucket="acls", **args)
        assert (err["Code"], err["Status"]) == ("AccessControlListNotSupported", 400), args
    assert error_doc(s3.head_object, Bucket="acls", Key="new")["Status"] == 404
    assert s3.list_multipart_uploads(Bucket="acls").get("Uploads", []) == []
    status, _, body = http("GET", f"{cluster.endpoint}/acls/k")  # still private
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, _, body = signed_get(cluster, "/acls/k?acl", method="PUT")  # neither header nor body
    assert status == 400 and b"<Code>MissingSecurityHeader</Code>" in body


def test_ownership_controls_say_acls_are_disabled(s3):
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert s3.get_bucket_ownership_controls(Bucket="acls")["OwnershipControls"] == enforced
    s3.put_bucket_ownership_controls(Bucket="acls", OwnershipControls=enforced)
    for setting in ("ObjectWriter", "BucketOwnerPreferred"):
        err = error_doc(s3.put_bucket_ownership_controls, Bucket="acls", OwnershipControls={
            "Rules": [{"ObjectOwnership": setting}]})
        assert (err["Code"], err["Status"]) == ("NotImplemented", 501), setting
    assert s3.get_bucket_ownership_controls(Bucket="acls")["OwnershipControls"] == enforced


def test_object_acl_names_the_version_as_get_does(s3):
    """x-amz-version-id on GetObjectAcl follows GET's rule: none in a bucket that never
    had versioning, the version asked for once it has, "null" after suspending."""
    def version_header(**args) -> str | None:
        return s3.get_object_acl(Bucket="acl-versions", Key="k", **args)[
            "ResponseMetadata"]["HTTPHeaders"].get("x-amz-version-id")

    s3.create_bucket(Bucket="acl-versions")
    s3.put_object(Bucket="acl-versions", Key="k", Body=b"0")
    assert version_header() is None
    s3.put_bucket_versioning(Bucket="acl-versions",
                             VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="acl-versions", Key="k", Body=b"1")["VersionId"]
    s3.put_object(Bucket="acl-versions", Key="k", Body=b"2")
    assert version_header(VersionId=v1) == v1
    assert version_header(VersionId="null") == "null"  # the object from before versioning
    s3.put_bucket_versioning(Bucket="acl-versions",
                             VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket="acl-versions", Key="k", Body=b"3")
    assert version_header() == "null"
    for got in (s3.get_object(Bucket="acl-versions", Key="k", VersionId=v1),
                s3.get_object_acl(Bucket="acl-versions", Key="k", VersionId=v1)):
        assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == v1
