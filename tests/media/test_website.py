"""Static website hosting against a real cluster: configuration and the website endpoint."""

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.media.web import http


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None


SITE = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "errors/404.html"}}


def make_public(s3, bucket: str) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/drafts/*"}]}))


@pytest.fixture
def site(s3, bucket) -> str:
    for key, body in {"index.html": b"<h1>home</h1>", "docs/index.html": b"<h1>docs</h1>",
                      "errors/404.html": b"<h1>lost</h1>", "drafts/x.html": b"draft",
                      "style.css": b"h1{}"}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    make_public(s3, bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=SITE)
    return bucket


def test_configuration_round_trip_and_errors(s3, bucket) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchWebsiteConfiguration"
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration=SITE)
    got = s3.get_bucket_website(Bucket=bucket)
    assert got["IndexDocument"] == SITE["IndexDocument"]
    assert got["ErrorDocument"] == SITE["ErrorDocument"]
    with pytest.raises(ClientError) as err:
        s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
            "IndexDocument": {"Suffix": "a/index.html"}})
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    s3.delete_bucket_website(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_website(Bucket=bucket)


def test_index_documents_and_redirect(media_cluster, site) -> None:
    web = f"{media_cluster.website_endpoint}/{site}"
    status, headers, body = http("GET", f"{web}/")
    assert (status, body) == (200, b"<h1>home</h1>")
    assert headers["content-type"] == "text/html"
    assert http("GET", f"{web}/docs/")[2] == b"<h1>docs</h1>"
    assert http("GET", f"{web}/style.css")[1]["content-type"] == "text/css"

    opener = urllib.request.build_opener(NoRedirect)  # see the 302 itself
    for path, location in ((f"{web}/docs", f"/{site}/docs/"), (web, f"/{site}/")):
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(path, timeout=10)
        assert (err.value.code, err.value.headers["Location"]) == (302, location)


def test_error_document_and_policy(media_cluster, site) -> None:
    web = f"{media_cluster.website_endpoint}/{site}"
    status, _, body = http("GET", f"{web}/no/such/page.html")
    assert (status, body) == (404, b"<h1>lost</h1>")
    status, _, body = http("GET", f"{web}/drafts/x.html")  # denied by the policy
    assert (status, body) == (403, b"<h1>lost</h1>")
    assert http("HEAD", f"{web}/index.html")[0] == 200
    assert http("PUT", f"{web}/index.html", data=b"x")[0] == 405


def test_bucket_in_host_header(media_cluster, site) -> None:
    status, _, body = http("GET", f"{media_cluster.website_endpoint}/docs/",
                           headers={"Host": f"{site}.localhost"})
    assert (status, body) == (200, b"<h1>docs</h1>")


def test_only_public_buckets_with_a_website_are_served(media_cluster, s3, bucket) -> None:
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"hi")
    web = f"{media_cluster.website_endpoint}/{bucket}/"
    status, _, body = http("GET", web)
    assert status == 404 and b"NoSuchWebsiteConfiguration" in body
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}})
    status, _, body = http("GET", web)
    assert status == 403 and b"AccessDenied" in body  # no public-read policy yet
    make_public(s3, bucket)
    assert http("GET", web)[:3:2] == (200, b"hi")
    status, _, body = http("GET", web + "missing")  # no error document: a plain page
    assert status == 404 and b"NoSuchKey" in body
