"""Operations Shoal does not implement answer 501 NotImplemented in S3 XML and change
nothing (the full list is checked against botocore's model in tests/unit/test_router.py)."""

from __future__ import annotations

import pytest

from gateway.limits import STORAGE_CLASSES
from tests.s3.util import client_with_object, error_doc, signed_get

CALLS = {
    "delete_bucket_ownership_controls": {},
    "list_bucket_metrics_configurations": {},
    "list_bucket_inventory_configurations": {},
    "list_bucket_analytics_configurations": {},
    "list_bucket_intelligent_tiering_configurations": {},
    "put_bucket_request_payment": {"RequestPaymentConfiguration": {"Payer": "Requester"}},
    "put_bucket_accelerate_configuration": {"AccelerateConfiguration": {"Status": "Enabled"}},
    "put_public_access_block": {"PublicAccessBlockConfiguration": {"BlockPublicAcls": True}},
    "put_bucket_logging": {"BucketLoggingStatus": {}},
    "delete_bucket_lifecycle": {},
    "get_object_retention": {"Key": "k"},
    "get_object_legal_hold": {"Key": "k"},
    "get_object_torrent": {"Key": "k"},
    "restore_object": {"Key": "k", "RestoreRequest": {"Days": 1}},
}


@pytest.fixture(scope="module")
def s3(cluster):
    return client_with_object(cluster, "unsupported", b"unchanged")


@pytest.mark.parametrize("call", sorted(CALLS))
def test_unsupported_operations_answer_501(s3, call):
    err = error_doc(getattr(s3, call), Bucket="unsupported", **CALLS[call])
    assert (err["Code"], err["Status"]) == ("NotImplemented", 501)
    assert err["Message"]
    assert s3.get_object(Bucket="unsupported", Key="k")["Body"].read() == b"unchanged"


def test_unknown_sub_resource_and_method(cluster, s3):
    status, _, body = signed_get(cluster, "/unsupported/k?torrent")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body
    status, _, body = signed_get(cluster, "/unsupported/k", method="PATCH")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body
    status, _, body = signed_get(cluster, "/unsupported/k", method="POST")
    assert status == 501 and b"<Code>NotImplemented</Code>" in body
    assert s3.get_object(Bucket="unsupported", Key="k")["Body"].read() == b"unchanged"


def test_storage_classes_are_the_ones_s3_knows(s3):
    """Every class is stored alike and listed as STANDARD, so a known one is accepted;
    an unknown one is InvalidStorageClass, on each operation that takes one, and stores
    nothing."""
    model = s3.meta.service_model.shape_for("StorageClass").enum
    assert {c.encode() for c in model} == STORAGE_CLASSES
    s3.put_object(Bucket="unsupported", Key="cold", Body=b"cold", StorageClass="GLACIER_IR")
    assert s3.get_object(Bucket="unsupported", Key="cold")["Body"].read() == b"cold"
    source = {"Bucket": "unsupported", "Key": "k"}
    for call, args in (
            (s3.put_object, {"Key": "bad", "Body": b"x"}),
            (s3.copy_object, {"Key": "bad", "CopySource": source}),
            (s3.create_multipart_upload, {"Key": "bad"})):
        err = error_doc(call, Bucket="unsupported", StorageClass="COLD_AS_ICE", **args)
        assert (err["Code"], err["Status"]) == ("InvalidStorageClass", 400)
        assert err["StorageClassRequested"] == "COLD_AS_ICE"
    assert error_doc(s3.head_object, Bucket="unsupported", Key="bad")["Status"] == 404
    assert s3.list_multipart_uploads(Bucket="unsupported").get("Uploads", []) == []



def test_configurations_shoal_cannot_set_read_as_on_a_bucket_without_them(s3):
    """GET of a configuration Shoal has no way to set answers as S3 does for a bucket
    that has none (tools that read them all, like terraform's provider, see a plain
    bucket); setting one is 501, above."""
    for call, code in (("get_bucket_lifecycle_configuration", "NoSuchLifecycleConfiguration"),
                       ("get_bucket_replication", "ReplicationConfigurationNotFoundError"),
                       ("get_object_lock_configuration", "ObjectLockConfigurationNotFoundError"),
                       ("get_public_access_block", "NoSuchPublicAccessBlockConfiguration")):
        err = error_doc(getattr(s3, call), Bucket="unsupported")
        assert (err["Code"], err["Status"], err["BucketName"]) == (code, 404, "unsupported")
    assert s3.get_bucket_request_payment(Bucket="unsupported")["Payer"] == "BucketOwner"
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket="unsupported")
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket="unsupported")
    notes = s3.get_bucket_notification_configuration(Bucket="unsupported")
    assert not {"TopicConfigurations", "QueueConfigurations",
                "LambdaFunctionConfigurations", "EventBridgeConfiguration"} & set(notes)
    err = error_doc(s3.get_bucket_request_payment, Bucket="no-such-bucket-here")
    assert (err["Code"], err["Status"]) == ("NoSuchBucket", 404)
