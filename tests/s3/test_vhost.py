"""Virtual-hosted-style addressing (bucket.s3.shoal.test:PORT) beside path-style.

The cluster's gateway gets its base domain from SHOAL_DOMAIN (as `shoal up --domain`
and `shoal gateway --domain` do). Names under the test domain resolve to loopback by a
patched ``socket.getaddrinfo`` in this process: the OS resolver is the only thing
standing in, and only for names no resolver here would know.
"""

from __future__ import annotations

import os
import socket

import boto3
import pytest
from botocore.config import Config

from tests.harness import ShoalCluster, error_of, http
from tests.s3.util import signed_get

DOMAIN = "s3.shoal.test"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    old = os.environ.get("SHOAL_DOMAIN")
    os.environ["SHOAL_DOMAIN"] = DOMAIN
    c = ShoalCluster(tmp_path_factory.mktemp("vhost") / "data", nodes=3, zones=3)
    try:
        c.start()
    finally:
        if old is None:
            del os.environ["SHOAL_DOMAIN"]
        else:
            os.environ["SHOAL_DOMAIN"] = old
    yield c
    c.stop()


@pytest.fixture(scope="module", autouse=True)
def resolve_test_domain():
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        name = host.lower() if isinstance(host, str) else ""
        if name == DOMAIN or name.endswith("." + DOMAIN):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


@pytest.fixture(scope="module")
def vhost(cluster):
    return boto3.client(
        "s3", endpoint_url=f"http://{DOMAIN}:{cluster.port}", region_name="us-east-1",
        aws_access_key_id=cluster.access_key, aws_secret_access_key=cluster.secret_key,
        config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4",
                      retries={"max_attempts": 1}))


def test_virtual_hosted_round_trip(vhost, cluster):
    vhost.create_bucket(Bucket="vh-bucket")
    put = vhost.put_object(Bucket="vh-bucket", Key="dir/a file+ü", Body=b"hosted")
    got = vhost.get_object(Bucket="vh-bucket", Key="dir/a file+ü")
    assert got["Body"].read() == b"hosted" and got["ETag"] == put["ETag"]
    assert [o["Key"] for o in vhost.list_objects_v2(Bucket="vh-bucket")["Contents"]] == [
        "dir/a file+ü"]
    # The same bucket, path-style, through the same gateway.
    path_style = cluster.client()
    assert path_style.get_object(Bucket="vh-bucket", Key="dir/a file+ü")["Body"].read() == (
        b"hosted")
    vhost.copy_object(Bucket="vh-bucket", Key="copy", CopySource="vh-bucket/dir/a file+ü")
    vhost.delete_objects(Bucket="vh-bucket", Delete={"Objects": [{"Key": "copy"}]})
    assert error_of(vhost.head_object, Bucket="vh-bucket", Key="copy") == ("404", 404)


def test_keys_with_leading_slashes_and_multipart(vhost):
    vhost.create_bucket(Bucket="vh-multi")
    vhost.put_object(Bucket="vh-multi", Key="/lead", Body=b"slash")
    assert vhost.get_object(Bucket="vh-multi", Key="/lead")["Body"].read() == b"slash"
    uid = vhost.create_multipart_upload(Bucket="vh-multi", Key="mp")["UploadId"]
    etag = vhost.upload_part(Bucket="vh-multi", Key="mp", UploadId=uid, PartNumber=1,
                             Body=b"one part")["ETag"]
    vhost.complete_multipart_upload(Bucket="vh-multi", Key="mp", UploadId=uid,
                                    MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                "ETag": etag}]})
    assert vhost.get_object(Bucket="vh-multi", Key="mp")["Body"].read() == b"one part"


def test_presigned_virtual_hosted_url(vhost):
    vhost.create_bucket(Bucket="vh-presign")
    vhost.put_object(Bucket="vh-presign", Key="k", Body=b"signed")
    url = vhost.generate_presigned_url("get_object", Params={"Bucket": "vh-presign",
                                                             "Key": "k"})
    assert url.startswith(f"http://vh-presign.{DOMAIN}:")
    assert http("GET", url)[:3:2] == (200, b"signed")


def test_dotted_bucket_and_wrong_host(vhost, cluster):
    cluster.client().create_bucket(Bucket="dotted.name")
    cluster.client().put_object(Bucket="dotted.name", Key="k", Body=b"dots")
    status, _, body = signed_get(cluster, f"http://dotted.name.{DOMAIN}:{cluster.port}/k")
    assert (status, body) == (200, b"dots")
    # A host outside the domain is path-style: /k names a bucket "k" that does not exist.
    assert error_of(cluster.client().list_objects_v2, Bucket="k") == ("NoSuchBucket", 404)
