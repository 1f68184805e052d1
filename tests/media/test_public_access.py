"""Anonymous access through bucket policies, against a real cluster (boto3 + plain HTTP)."""

import json
import subprocess

import pytest
from botocore.exceptions import ClientError

from tests.harness import SHOAL
from tests.media.web import error_code, http


def put_policy(s3, bucket: str, *statements: dict) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))


def statement(effect: str, resource: str) -> dict:
    return {"Effect": effect, "Principal": "*", "Action": "s3:GetObject", "Resource": resource}


def test_anonymous_get_on_a_private_bucket_is_access_denied(media_cluster, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"private")
    status, _, body = http("GET", f"{media_cluster.endpoint}/{bucket}/a.txt")
    assert status == 403 and error_code(body) == "AccessDenied"
    assert http("HEAD", f"{media_cluster.endpoint}/{bucket}/a.txt")[0] == 403
    assert http("GET", f"{media_cluster.endpoint}/{bucket}")[0] == 403  # listing
    assert http("GET", f"{media_cluster.endpoint}/")[0] == 403  # ListBuckets


def test_public_prefix_is_readable_and_nothing_else(media_cluster, s3, bucket) -> None:
    ep = media_cluster.endpoint
    s3.put_object(Bucket=bucket, Key="pub/clip.wav", Body=b"RIFF" + bytes(100))
    s3.put_object(Bucket=bucket, Key="private/notes.txt", Body=b"secret")
    put_policy(s3, bucket, statement("Allow", f"arn:aws:s3:::{bucket}/pub/*"))

    status, headers, body = http("GET", f"{ep}/{bucket}/pub/clip.wav")
    assert status == 200 and body == b"RIFF" + bytes(100)
    assert headers["content-type"] == "audio/wav"  # guessed: the upload declared none
    assert headers["accept-ranges"] == "bytes"
    status, headers, body = http("GET", f"{ep}/{bucket}/pub/clip.wav",
                                 headers={"Range": "bytes=-4"})
    assert status == 206 and body == bytes(4)
    assert headers["content-range"] == "bytes 100-103/104"
    assert http("HEAD", f"{ep}/{bucket}/pub/clip.wav")[0] == 200

    status, _, body = http("GET", f"{ep}/{bucket}/private/notes.txt")
    assert status == 403 and error_code(body) == "AccessDenied"
    # Reading is all a policy opens to anonymous clients: writes and deletes stay closed.
    assert http("PUT", f"{ep}/{bucket}/pub/new.txt", data=b"x")[0] == 403
    assert http("DELETE", f"{ep}/{bucket}/pub/clip.wav")[0] == 403
    assert s3.get_object(Bucket=bucket, Key="pub/clip.wav")["ContentLength"] == 104


def test_deny_statement_wins_over_allow(media_cluster, s3, bucket) -> None:
    for key in ("pub/ok.png", "pub/draft/x.png"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"png")
    put_policy(s3, bucket, statement("Allow", f"arn:aws:s3:::{bucket}/*"),
               statement("Deny", f"arn:aws:s3:::{bucket}/pub/draft/*"))
    assert http("GET", f"{media_cluster.endpoint}/{bucket}/pub/ok.png")[0] == 200
    status, _, body = http("GET", f"{media_cluster.endpoint}/{bucket}/pub/draft/x.png")
    assert status == 403 and error_code(body) == "AccessDenied"


def test_policy_round_trip_delete_and_errors(media_cluster, s3, bucket) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    text = json.dumps({"Version": "2012-10-17",
                       "Statement": [statement("Allow", f"arn:aws:s3:::{bucket}/*")]})
    s3.put_bucket_policy(Bucket=bucket, Policy=text)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(text)

    for bad in ("{not json", json.dumps({"Statement": [statement("Allow", "arn:aws:s3:::x/*")]}),
                json.dumps({"Statement": [{**statement("Allow", f"arn:aws:s3:::{bucket}/*"),
                                           "Condition": {"Bool": {"aws:SecureTransport": "1"}}}]})):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_policy(Bucket=bucket, Policy=bad)
        assert err.value.response["Error"]["Code"] == "MalformedPolicy"
    # A refused document changed nothing.
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(text)

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert http("GET", f"{media_cluster.endpoint}/{bucket}/k")[0] == 200
    s3.delete_bucket_policy(Bucket=bucket)
    assert http("GET", f"{media_cluster.endpoint}/{bucket}/k")[0] == 403
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)


def test_content_type_from_upload_wins_and_unknown_extension_keeps_s3_default(s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="page.html", Body=b"<p>", ContentType="text/plain")
    s3.put_object(Bucket=bucket, Key="pic.PNG", Body=b"x", CacheControl="max-age=60")
    s3.put_object(Bucket=bucket, Key="blob.unknownext", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="page.html")["ContentType"] == "text/plain"
    pic = s3.head_object(Bucket=bucket, Key="pic.PNG")
    assert pic["ContentType"] == "image/png" and pic["CacheControl"] == "max-age=60"
    assert s3.head_object(Bucket=bucket, Key="blob.unknownext")["ContentType"] == \
        "binary/octet-stream"


def test_shoal_bucket_public_switch(media_cluster, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="img/a.png", Body=b"a")
    s3.put_object(Bucket=bucket, Key="doc/b.txt", Body=b"b")
    url = f"{media_cluster.endpoint}/{bucket}"

    def shoal(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SHOAL), "bucket", "public", bucket, "--data",
                               str(media_cluster.data), *args],
                              capture_output=True, text=True, timeout=60)

    done = shoal("--prefix", "img/")
    assert done.returncode == 0, done.stderr
    assert http("GET", f"{url}/img/a.png")[0] == 200
    assert http("GET", f"{url}/doc/b.txt")[0] == 403
    assert shoal().returncode == 0  # the whole bucket
    assert http("GET", f"{url}/doc/b.txt")[0] == 200
    assert shoal("--off").returncode == 0
    assert http("GET", f"{url}/img/a.png")[0] == 403
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=bucket)  # nothing left: the policy is gone
    missing = subprocess.run([str(SHOAL), "bucket", "public", "no-such-bucket-x", "--data",
                              str(media_cluster.data)], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode != 0 and "NoSuchBucket" in missing.stderr
