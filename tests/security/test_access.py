"""Access keys stored in the cluster: per-bucket permissions, enforced on every operation.

(The node API's own authentication -- no HMAC, stale timestamp, replay: 403 and nothing
changes -- is tested in tests/cluster/test_node_api.py.)
"""

from __future__ import annotations

import io
import json
import subprocess
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.access import REQUIRED
from tests.harness import SHOAL, error_of, http
from tests.security.conftest import admin_of, s3_as


@pytest.fixture(scope="module")
def admin(small_cluster):
    return admin_of(small_cluster)


@pytest.fixture(scope="module")
def s3(small_cluster):
    return small_cluster.client()


PUBLIC = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
          '"Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*"}]}')


def post_form(form: dict, data: bytes) -> tuple[int, dict, bytes]:
    """POST Object as a browser sends it: the signed fields, then the file."""
    boundary = "----shoalform"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             for k, v in form["fields"].items()]
    body = ("".join(parts) + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="f"\r\n\r\n').encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return http("POST", form["url"], data=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def new_client(cluster, admin, grants: dict[str, str] | None = None):  # noqa: ANN001, ANN201
    key = admin.create_key("test")
    for bucket, level in (grants or {}).items():
        admin.allow(key["access_key"], bucket, level)
    return s3_as(cluster, key["access_key"], key["secret_key"]), key["access_key"]


def test_a_key_without_permission_is_denied_every_operation(small_cluster, admin, s3):
    s3.create_bucket(Bucket="guarded")
    s3.create_bucket(Bucket="elsewhere")
    s3.put_object(Bucket="guarded", Key="obj", Body=b"original")
    upload = s3.create_multipart_upload(Bucket="guarded", Key="mp")["UploadId"]
    stranger, _ = new_client(small_cluster, admin, {"elsewhere": "owner"})
    b, k = "guarded", "obj"
    calls = {
        "HeadBucket": lambda: stranger.head_bucket(Bucket=b),
        "GetBucketLocation": lambda: stranger.get_bucket_location(Bucket=b),
        "ListObjects": lambda: stranger.list_objects(Bucket=b),
        "ListObjectsV2": lambda: stranger.list_objects_v2(Bucket=b),
        "GetObject": lambda: stranger.get_object(Bucket=b, Key=k),
        "HeadObject": lambda: stranger.head_object(Bucket=b, Key=k),
        "ListParts": lambda: stranger.list_parts(Bucket=b, Key="mp", UploadId=upload),
        "ListMultipartUploads": lambda: stranger.list_multipart_uploads(Bucket=b),
        "GetBucketEncryption": lambda: stranger.get_bucket_encryption(Bucket=b),
        "PutObject": lambda: stranger.put_object(Bucket=b, Key=k, Body=b"evil"),
        "DeleteObject": lambda: stranger.delete_object(Bucket=b, Key=k),
        "DeleteObjects": lambda: stranger.delete_objects(
            Bucket=b, Delete={"Objects": [{"Key": k}]}),
        "CopyObject": lambda: stranger.copy_object(Bucket=b, Key="c", CopySource="guarded/obj"),
        "UploadPartCopy": lambda: stranger.upload_part_copy(
            Bucket=b, Key="mp", UploadId=upload, PartNumber=1, CopySource="guarded/obj"),
        "CreateMultipartUpload": lambda: stranger.create_multipart_upload(Bucket=b, Key="x"),
        "UploadPart": lambda: stranger.upload_part(Bucket=b, Key="mp", UploadId=upload,
                                                   PartNumber=1, Body=b"evil"),
        "CompleteMultipartUpload": lambda: stranger.complete_multipart_upload(
            Bucket=b, Key="mp", UploadId=upload, MultipartUpload={"Parts": []}),
        "AbortMultipartUpload": lambda: stranger.abort_multipart_upload(
            Bucket=b, Key="mp", UploadId=upload),
        "DeleteBucket": lambda: stranger.delete_bucket(Bucket=b),
        "PutBucketEncryption": lambda: stranger.put_bucket_encryption(
            Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}),
        "DeleteBucketEncryption": lambda: stranger.delete_bucket_encryption(Bucket=b),
        "GetObjectAttributes": lambda: stranger.get_object_attributes(
            Bucket=b, Key=k, ObjectAttributes=["ETag"]),
        "ListObjectVersions": lambda: stranger.list_object_versions(Bucket=b),
        "GetBucketVersioning": lambda: stranger.get_bucket_versioning(Bucket=b),
        "PutBucketVersioning": lambda: stranger.put_bucket_versioning(
            Bucket=b, VersioningConfiguration={"Status": "Enabled"}),
        "GetObjectTagging": lambda: stranger.get_object_tagging(Bucket=b, Key=k),
        "PutObjectTagging": lambda: stranger.put_object_tagging(
            Bucket=b, Key=k, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "DeleteObjectTagging": lambda: stranger.delete_object_tagging(Bucket=b, Key=k),
        "GetBucketTagging": lambda: stranger.get_bucket_tagging(Bucket=b),
        "PutBucketTagging": lambda: stranger.put_bucket_tagging(
            Bucket=b, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}),
        "DeleteBucketTagging": lambda: stranger.delete_bucket_tagging(Bucket=b),
        "GetBucketPolicy": lambda: stranger.get_bucket_policy(Bucket=b),
        "PutBucketPolicy": lambda: stranger.put_bucket_policy(Bucket=b, Policy=PUBLIC % b),
        "DeleteBucketPolicy": lambda: stranger.delete_bucket_policy(Bucket=b),
        "GetBucketCors": lambda: stranger.get_bucket_cors(Bucket=b),
        "PutBucketCors": lambda: stranger.put_bucket_cors(Bucket=b, CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]}),
        "DeleteBucketCors": lambda: stranger.delete_bucket_cors(Bucket=b),
        "GetBucketWebsite": lambda: stranger.get_bucket_website(Bucket=b),
        "PutBucketWebsite": lambda: stranger.put_bucket_website(
            Bucket=b, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}),
        "DeleteBucketWebsite": lambda: stranger.delete_bucket_website(Bucket=b),
        "GetBucketAcl": lambda: stranger.get_bucket_acl(Bucket=b),
        "PutBucketAcl": lambda: stranger.put_bucket_acl(Bucket=b, ACL="private"),
        "GetObjectAcl": lambda: stranger.get_object_acl(Bucket=b, Key=k),
        "PutObjectAcl": lambda: stranger.put_object_acl(Bucket=b, Key=k, ACL="private"),
        "GetBucketOwnershipControls": lambda: stranger.get_bucket_ownership_controls(Bucket=b),
        "PutBucketOwnershipControls": lambda: stranger.put_bucket_ownership_controls(
            Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
        "DeleteBucketOwnershipControls": lambda: stranger.delete_bucket_ownership_controls(
            Bucket=b),
        "GetBucketLifecycleConfiguration": lambda: stranger.get_bucket_lifecycle_configuration(
            Bucket=b),
        "GetBucketReplication": lambda: stranger.get_bucket_replication(Bucket=b),
        "GetObjectLockConfiguration": lambda: stranger.get_object_lock_configuration(Bucket=b),
        "GetPublicAccessBlock": lambda: stranger.get_public_access_block(Bucket=b),
        "GetBucketRequestPayment": lambda: stranger.get_bucket_request_payment(Bucket=b),
        "GetBucketAccelerateConfiguration": lambda: stranger.get_bucket_accelerate_configuration(
            Bucket=b),
        "GetBucketLogging": lambda: stranger.get_bucket_logging(Bucket=b),
        "GetBucketNotificationConfiguration":
            lambda: stranger.get_bucket_notification_configuration(Bucket=b),
    }
    form = stranger.generate_presigned_post(b, "posted")  # PostObject: a browser form
    status, _, answer = post_form(form, b"evil")
    assert status == 403 and b"<Code>AccessDenied</Code>" in answer
    assert set(calls) | {"PostObject"} == {
        op for op, level in REQUIRED.items() if level is not None}
    for op, call in calls.items():
        code, status = error_of(call)
        assert status == 403 and code in ("AccessDenied", "403"), (op, code, status)
    # Reading from a bucket it cannot read, into its own bucket, is refused too.
    assert error_of(stranger.copy_object, Bucket="elsewhere", Key="c",
                    CopySource="guarded/obj") == ("AccessDenied", 403)
    assert [x["Name"] for x in stranger.list_buckets()["Buckets"]] == ["elsewhere"]
    assert error_of(stranger.create_bucket, Bucket=b) == ("BucketAlreadyExists", 409)
    # Nothing changed.
    assert s3.get_object(Bucket=b, Key=k)["Body"].read() == b"original"
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=b)["Uploads"]] == [upload]
    assert error_of(s3.get_bucket_encryption, Bucket=b)[1] == 404
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]] == ["obj"]


def test_read_write_and_owner_levels(small_cluster, admin, s3):
    s3.create_bucket(Bucket="levels")
    s3.put_object(Bucket="levels", Key="seed", Body=b"seed")
    reader, _ = new_client(small_cluster, admin, {"levels": "read"})
    writer, _ = new_client(small_cluster, admin, {"levels": "write"})
    owner, _ = new_client(small_cluster, admin, {"levels": "owner"})

    assert reader.get_object(Bucket="levels", Key="seed")["Body"].read() == b"seed"
    assert error_of(reader.put_object, Bucket="levels", Key="r", Body=b"r") == (
        "AccessDenied", 403)
    writer.upload_fileobj(io.BytesIO(b"w" * 1000), "levels", "w")
    writer.delete_object(Bucket="levels", Key="seed")
    assert error_of(writer.delete_bucket, Bucket="levels") == ("AccessDenied", 403)
    owner.delete_object(Bucket="levels", Key="w")
    owner.delete_bucket(Bucket="levels")
    assert error_of(s3.head_bucket, Bucket="levels") == ("404", 404)


def test_a_key_owns_the_buckets_it_creates_and_loses_access_when_deleted(
        small_cluster, admin):
    client, access_key = new_client(small_cluster, admin)
    client.create_bucket(Bucket="self-made")
    client.put_object(Bucket="self-made", Key="k", Body=b"mine")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["self-made"]
    listed = {k["access_key"]: k for k in admin.list_keys()}
    assert listed[access_key]["buckets"] == {"self-made": "owner"}
    assert "secret_key" not in listed[access_key]

    admin.allow(access_key, "self-made", "none")
    assert error_of(client.get_object, Bucket="self-made", Key="k") == ("AccessDenied", 403)
    admin.delete_key(access_key)
    assert error_of(client.list_buckets) == ("InvalidAccessKeyId", 403)


def test_admin_api_needs_the_token(small_cluster):
    url = small_cluster.endpoint + "/_shoal/admin/keys"
    status, _, body = http("GET", url)  # no credentials at all: asked for them
    assert status == 401 and json.loads(body)["error"] == "AccessDenied"
    for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        status, _, body = http("GET", url, headers=headers)
        assert status == 403 and json.loads(body)["error"] == "AccessDenied"
    status, _, _ = http("POST", url, data=b"{}", headers={"Authorization": "Bearer nope"})
    assert status == 403


def test_cli_manages_keys_and_buckets(small_cluster, s3):
    def shoal(*args: str) -> str:
        done = subprocess.run([str(SHOAL), *args, "--data", str(small_cluster.data)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = shoal("key", "create", "--name", "cli")
    access_key = out.split("access key: ")[1].split()[0]
    secret_key = out.split("secret key: ")[1].split()[0]
    assert "replica:2" in shoal("bucket", "create", "cli-replicas", "--replicas", "2")
    shoal("key", "allow", access_key, "cli-replicas", "write")
    assert f"{access_key}  cli  cli-replicas:write" in shoal("key", "list")
    info = json.loads(shoal("bucket", "info", "cli-replicas", "--json"))
    assert info["policy"] == {"kind": "replica", "k": 1, "m": 1, "zones": 1,
                              "encrypt": False, "text": "replica:2"}
    s3_as(small_cluster, access_key, secret_key).put_object(
        Bucket="cli-replicas", Key="k", Body=b"v")
    assert s3.get_object(Bucket="cli-replicas", Key="k")["Body"].read() == b"v"
    assert "healthy" in shoal("status")
    shoal("key", "delete", access_key)
    refused = subprocess.run([str(SHOAL), "bucket", "create", "too-wide", "--ec", "4+2",
                              "--data", str(small_cluster.data)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "needs 6 live storage nodes; the cluster has 3" in refused.stderr


def send_refused_early(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """POST a body the server refuses (and closes on) before reading it: the send may
    break off with a broken pipe; the answer is read all the same, as a client would."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    for name, value in headers.items():
        if name.lower() != "host":
            conn.putheader(name, value)
    conn.endheaders()
    try:
        conn.send(body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused before the body was read: what is being tested
    response = conn.getresponse()
    return response.status, response.read()


def test_request_limits_refuse_before_reading(small_cluster, s3):
    s3.create_bucket(Bucket="limits")
    url = f"{small_cluster.endpoint}/limits/k"
    status, _, body = http("GET", url, headers={"x-pad": "p" * 20_000})
    assert status == 400 and b"RequestHeaderSectionTooLarge" in body
    assert error_of(s3.put_object, Bucket="limits", Key="m", Body=b"x",
                    Metadata={"big": "v" * 3000}) == ("MetadataTooLarge", 400)
    # A buffered (XML) body larger than any such document is refused from its header.
    big = b"<Delete>" + b" " * (3 * 1024 * 1024) + b"</Delete>"
    url = f"{small_cluster.endpoint}/limits?delete"
    request = AWSRequest("POST", url, data=big, headers={
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": str(len(big))})
    S3SigV4Auth(Credentials(small_cluster.access_key, small_cluster.secret_key), "s3",
                "us-east-1").add_auth(request)
    status, body = send_refused_early(url, big, dict(request.headers))
    assert status == 400 and b"MaxMessageLengthExceeded" in body
    assert error_of(s3.put_object, Bucket="limits", Key="k" * 1025, Body=b"x") == (
        "KeyTooLongError", 400)
