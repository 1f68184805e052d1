"""Response overrides (response-content-type & co.) and stored standard headers."""

from __future__ import annotations

from datetime import UTC, datetime
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest

from tests.harness import http


@pytest.fixture(scope="module")
def s3(cluster):
    s3 = cluster.client(signature_version="s3v4")
    s3.create_bucket(Bucket="over")
    s3.put_object(Bucket="over", Key="doc.txt", Body=b"hello", ContentType="text/plain",
                  CacheControl="max-age=60", ContentDisposition="inline",
                  ContentEncoding="identity", ContentLanguage="en",
                  Expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), Metadata={"m": "1"})
    return s3


def test_stored_headers_round_trip(s3):
    got = s3.get_object(Bucket="over", Key="doc.txt")
    assert (got["ContentType"], got["CacheControl"], got["ContentDisposition"],
            got["ContentEncoding"], got["ContentLanguage"]) == (
        "text/plain", "max-age=60", "inline", "identity", "en")
    assert got["ExpiresString"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert got["Metadata"] == {"m": "1"}


def test_get_overrides(s3):
    got = s3.get_object(
        Bucket="over", Key="doc.txt", ResponseContentType="application/json",
        ResponseContentDisposition='attachment; filename="a b.txt"',
        ResponseContentEncoding="gzip", ResponseCacheControl="no-store",
        ResponseContentLanguage="fr", ResponseExpires=datetime(2031, 5, 6, tzinfo=UTC))
    assert got["Body"].read() == b"hello"
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == 'attachment; filename="a b.txt"'
    assert (got["ContentEncoding"], got["CacheControl"], got["ContentLanguage"]) == (
        "gzip", "no-store", "fr")
    assert got["ExpiresString"] == "Tue, 06 May 2031 00:00:00 GMT"
    assert got["Metadata"] == {"m": "1"}
    # The stored object is unchanged.
    assert s3.head_object(Bucket="over", Key="doc.txt")["ContentType"] == "text/plain"


def test_head_overrides(s3):
    head = s3.head_object(Bucket="over", Key="doc.txt", ResponseContentType="image/png",
                          ResponseCacheControl="private")
    assert (head["ContentType"], head["CacheControl"]) == ("image/png", "private")


def test_presigned_download_link(s3):
    """The browser case: a presigned link that makes the file download under a name."""
    url = s3.generate_presigned_url("get_object", Params={
        "Bucket": "over", "Key": "doc.txt",
        "ResponseContentDisposition": "attachment; filename=report.txt",
        "ResponseContentType": "application/octet-stream"})
    status, headers, body = http("GET", url)
    headers = {k.lower(): v for k, v in headers.items()}
    assert (status, body) == (200, b"hello")
    assert headers["content-disposition"] == "attachment; filename=report.txt"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["cache-control"] == "max-age=60"  # not overridden: the stored value


def test_every_response_header_is_sent_once(s3, cluster):
    """One Server header (Shoal's, not also the HTTP server's) and no other repeats on a
    GET: some clients join repeated headers into a comma list."""
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "over", "Key": "doc.txt"})
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        assert response.read() == b"hello"
        names = [name.lower() for name, _ in response.getheaders()]
    finally:
        conn.close()
    assert len(names) == len(set(names)), names
    assert response.getheader("server") == "Shoal"
