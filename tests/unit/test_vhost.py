"""Virtual-hosted-style addressing: which Host names a bucket, and the key it leaves."""

from __future__ import annotations

from gateway.vhost import bucket_from_host, parse_domains, split_request_path


def test_virtual_hosts():
    domains = parse_domains(" s3.example , .other.test. ")
    assert domains == ("s3.example", "other.test")
    assert bucket_from_host("photos.s3.example:9000", domains) == "photos"
    assert bucket_from_host("my.dotted.bucket.other.test", domains) == "my.dotted.bucket"
    assert bucket_from_host("PHOTOS.S3.Example", domains) == "photos"
    for host in ("s3.example:9000", "127.0.0.1:9000", "[::1]:9000", "evil-s3.example", None):
        assert bucket_from_host(host, domains) is None, host
    assert split_request_path("//a/b", "bkt.s3.example", domains) == ("bkt", "/a/b")
    assert split_request_path("/bkt/a/b", "127.0.0.1", domains) == ("bkt", "a/b")
