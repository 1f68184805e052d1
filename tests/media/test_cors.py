"""CORS against a real cluster: configuration, preflights, headers on actual responses."""

import pytest
from botocore.exceptions import ClientError

from tests.media.web import error_code, http

PAGE = "https://player.example.com"
RULES = [
    {"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "HEAD"],
     "AllowedHeaders": ["range", "x-amz-*"], "ExposeHeaders": ["ETag", "Content-Range"],
     "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["http://uploader.test"], "AllowedMethods": ["PUT"],
     "AllowedHeaders": ["*"]},
]


@pytest.fixture
def cors_bucket(s3, bucket) -> str:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    s3.put_object(Bucket=bucket, Key="v.mp4", Body=bytes(range(256)) * 4)
    return bucket


def test_configuration_round_trip_and_delete(s3, bucket) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES
    with pytest.raises(ClientError) as err:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]})
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES  # unchanged
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)


def test_preflight_allowed_origin(media_cluster, cors_bucket) -> None:
    status, headers, _ = http("OPTIONS", f"{media_cluster.endpoint}/{cors_bucket}/v.mp4",
                              headers={"Origin": PAGE, "Access-Control-Request-Method": "GET",
                                       "Access-Control-Request-Headers": "Range, X-Amz-Date"})
    assert status == 200
    assert headers["access-control-allow-origin"] == PAGE
    assert headers["access-control-allow-methods"] == "GET, HEAD"
    assert headers["access-control-allow-headers"] == "range, x-amz-date"
    assert headers["access-control-expose-headers"] == "ETag, Content-Range"
    assert headers["access-control-max-age"] == "600"
    assert "Origin" in headers["vary"]


@pytest.mark.parametrize("origin,method,extra", [
    ("https://evil.org", "GET", None),  # origin not listed
    ("http://player.example.com", "GET", None),  # scheme differs
    (PAGE, "DELETE", None),  # method not allowed for this origin
    (PAGE, "GET", "x-custom-header"),  # header not allowed
])
def test_preflight_refused(media_cluster, cors_bucket, origin, method, extra) -> None:
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if extra:
        headers["Access-Control-Request-Headers"] = extra
    status, found, body = http("OPTIONS", f"{media_cluster.endpoint}/{cors_bucket}/v.mp4",
                               headers=headers)
    assert status == 403 and error_code(body) == "AccessForbidden"
    assert b"CORSResponse: This CORS request is not allowed" in body
    assert "access-control-allow-origin" not in found


def test_preflight_without_cors_configuration_or_origin(media_cluster, bucket) -> None:
    url = f"{media_cluster.endpoint}/{bucket}/x"
    status, _, body = http("OPTIONS", url, headers={
        "Origin": PAGE, "Access-Control-Request-Method": "GET"})
    assert status == 403 and b"CORS is not enabled for this bucket" in body
    status, _, body = http("OPTIONS", url, headers={"Access-Control-Request-Method": "GET"})
    assert status == 400 and error_code(body) == "BadRequest"


def test_actual_response_headers_for_allowed_and_refused_origins(media_cluster, s3,
                                                                  cors_bucket) -> None:
    # The media is public, so the browser's anonymous requests are what is checked here.
    s3.put_bucket_policy(Bucket=cors_bucket, Policy=(
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", '
        f'"Resource": "arn:aws:s3:::{cors_bucket}/*"}}]}}'))
    url = f"{media_cluster.endpoint}/{cors_bucket}/v.mp4"
    status, headers, body = http("GET", url, headers={"Origin": PAGE, "Range": "bytes=0-9"})
    assert status == 206 and body == bytes(range(10))
    assert headers["access-control-allow-origin"] == PAGE
    assert headers["access-control-expose-headers"] == "ETag, Content-Range"
    assert "Origin" in headers["vary"]

    status, headers, _ = http("GET", f"{media_cluster.endpoint}/{cors_bucket}/missing.mp4",
                              headers={"Origin": PAGE})
    assert status == 404 and headers["access-control-allow-origin"] == PAGE  # errors too

    status, headers, _ = http("GET", url, headers={"Origin": "https://evil.org"})
    assert status == 200  # CORS is the browser's check: the bytes are public anyway
    assert "access-control-allow-origin" not in headers and "Origin" in headers["vary"]

    status, headers, _ = http("GET", url)  # no Origin: not a CORS request
    assert status == 200 and "access-control-allow-origin" not in headers
