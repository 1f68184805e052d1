"""Bounded fuzzing of everything that parses client input before a handler trusts it.

Each parser must either succeed or raise S3Error (rendered as an S3 XML error); any
other exception would be a 500. Inputs mix random bytes with near-valid forms, which
reach deeper than noise.
"""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.conditions import check_copy_source, check_read, range_applies, write_condition
from gateway.copyobject import parse_copy_source
from gateway.encryption import parse_encryption_config
from gateway.errors import S3Error, render
from gateway.keys import credential_key
from gateway.limits import check_body, check_headers
from gateway.multipart import _requested_parts
from gateway.objects import parse_range
from gateway.router import resolve
from gateway.sigv4 import verify
from gateway.sse import customer_key
from gateway.xmlio import parse_xml

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
NOW = 1_795_000_000.0  # 2026-11-18


def only_s3_errors(call, *args) -> object:  # noqa: ANN001
    try:
        return call(*args)
    except S3Error as err:
        render(err, "/fuzz", "ID")  # the error itself must render
        return None


text = st.text(string.printable, max_size=40)
token = st.text(string.ascii_letters + string.digits + "/+=-_.;:, ", max_size=30)
amz_date = st.one_of(st.just("20261118T120000Z"), st.from_regex(r"\d{8}T\d{6}Z", fullmatch=True),
                     text)
credential = st.builds(
    lambda ak, d, r, s, t: f"{ak}/{d}/{r}/{s}/{t}",
    st.sampled_from(["AK", "NOPE", "", "A/B"]), st.one_of(st.just("20261118"), token),
    st.sampled_from(["us-east-1", "", "x"]), st.sampled_from(["s3", "iam", ""]),
    st.sampled_from(["aws4_request", "", "x"]))
authorization = st.builds(
    lambda alg, cred, signed, sig, extra: (
        f"{alg} Credential={cred}, SignedHeaders={signed}, Signature={sig}{extra}"),
    st.sampled_from(["AWS4-HMAC-SHA256", "AWS", "", "AWS4-HMAC-SHA256 "]), credential,
    st.sampled_from(["host;x-amz-date", "host", "", ";", "x-amz-date;host;range"]),
    st.one_of(st.from_regex(r"[0-9a-f]{64}", fullmatch=True), token), token)
header_name = st.sampled_from([b"host", b"x-amz-date", b"date", b"x-amz-content-sha256",
                               b"authorization", b"x-amz-meta-a", b"range", b"x-amz-foo"])
header_value = st.one_of(
    st.binary(max_size=40), authorization.map(lambda s: s.encode("latin-1", "replace")),
    st.sampled_from([b"UNSIGNED-PAYLOAD", b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                     b"Tue, 18 Nov 2026 12:00:00 GMT", b"Mon, 99 Foo 2026 99:99:99 GMT",
                     b"20261118T120000Z", b"e3b0c44298fc1c149afbf4c8996fb924"
                     b"27ae41e4649b934ca495991b7852b855"]))
query = st.one_of(
    st.binary(max_size=60),
    st.builds(lambda c, d, e, s, h: (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={c}&X-Amz-Date={d}"
        f"&X-Amz-Expires={e}&X-Amz-SignedHeaders={h}&X-Amz-Signature={s}").encode(
            "latin-1", "replace"),
        credential, amz_date, st.sampled_from(["1", "0", "604801", "-5", "x", ""]), token,
        st.sampled_from(["host", "", "x-amz-date"])))


@FUZZ
@given(method=st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE", "BREW"]),
       path=st.binary(max_size=40), query_string=query,
       headers=st.lists(st.tuples(header_name, header_value), max_size=6))
def test_sigv4_verify_raises_only_s3_errors(method, path, query_string, headers) -> None:
    only_s3_errors(verify, method, b"/" + path, query_string, headers,
                   {"AK": "secret"}.get, NOW)
    only_s3_errors(credential_key, headers, query_string)


xml_doc = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda root, inner: f"<{root}>{inner}</{root}>".encode(),
              st.sampled_from(["CompleteMultipartUpload", "ServerSideEncryptionConfiguration",
                               "Delete", "x"]),
              st.lists(st.sampled_from([
                  "<Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>",
                  "<Part><PartNumber>x</PartNumber></Part>", "<Part/>",
                  "<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256"
                  "</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>",
                  "<Rule><ApplyServerSideEncryptionByDefault/></Rule>", "<Rule/>",
                  "<SSEAlgorithm>aws:kms</SSEAlgorithm>", "&amp;", "<![CDATA[x]]>",
                  "<!ENTITY x 'y'>", "&x;", "<a xmlns='urn:x'>", "</a>", "\x00",
              ]), max_size=5).map("".join)),
    st.just(b"<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;'>]>"
            b"<d>&b;</d>"))


@FUZZ
@given(body=xml_doc)
def test_xml_body_parsers_raise_only_s3_errors(body: bytes) -> None:
    only_s3_errors(parse_xml, body)
    only_s3_errors(_requested_parts, body)
    only_s3_errors(parse_encryption_config, body)


@FUZZ
@given(header=st.one_of(text, st.from_regex(r"bytes=\d{0,25}-\d{0,25}", fullmatch=True),
                        st.from_regex(r" ?bytes=[0-9,\- ]{0,12}", fullmatch=True)),
       size=st.integers(0, 2**45))
def test_parse_range_raises_only_s3_errors(header: str, size: int) -> None:
    got = only_s3_errors(parse_range, header, size)
    if got is not None:
        start, end = got
        assert 0 <= start < end <= size


@FUZZ
@given(headers=st.dictionaries(
    st.sampled_from(["x-amz-server-side-encryption-customer-algorithm",
                     "x-amz-server-side-encryption-customer-key",
                     "x-amz-server-side-encryption-customer-key-md5", "x-amz-copy-source",
                     "content-length", "transfer-encoding"]),
    st.one_of(text, st.just("AES256"), st.just("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="))),
    op=st.sampled_from(["CreateBucket", "PutObject", "DeleteObjects"]))
def test_header_parsers_raise_only_s3_errors(headers: dict[str, str], op: str) -> None:
    only_s3_errors(customer_key, headers)
    only_s3_errors(check_body, op, headers)
    only_s3_errors(check_headers, [(k.encode(), v.encode()) for k, v in headers.items()])
    if "x-amz-copy-source" in headers:
        only_s3_errors(parse_copy_source, headers["x-amz-copy-source"])
    only_s3_errors(resolve, "PUT", "b", "k", {"encryption": ""}, headers)


http_date = st.one_of(text, st.sampled_from([
    "Tue, 18 Nov 2026 12:00:00 GMT", "Tuesday, 18-Nov-26 12:00:00 GMT",
    "Tue Nov 18 12:00:00 2026", "Mon, 99 Foo 2026 99:99:99 GMT", "", "0"]))
etag_header = st.one_of(text, st.sampled_from(['"abc"', "abc", "*", 'W/"abc"', '"a", "b"', ",,"]))
conditional_headers = st.fixed_dictionaries({}, optional={
    "if-match": etag_header, "if-none-match": etag_header,
    "if-modified-since": http_date, "if-unmodified-since": http_date, "if-range": st.one_of(
        etag_header, http_date),
    "x-amz-copy-source-if-match": etag_header, "x-amz-copy-source-if-none-match": etag_header,
    "x-amz-copy-source-if-modified-since": http_date,
    "x-amz-copy-source-if-unmodified-since": http_date})


@FUZZ
@given(headers=conditional_headers, etag=st.sampled_from(["abc", "d41d8cd98f00b204-2", ""]),
       last_modified=st.floats(0, 4e9))
def test_conditional_header_parsers_raise_only_s3_errors(headers, etag, last_modified) -> None:
    """If-*, If-Range and the copy-source family: a 304 answer, a 412 S3Error, never a crash."""
    only_s3_errors(check_read, headers, etag, last_modified)
    only_s3_errors(check_copy_source, headers, etag, last_modified)
    only_s3_errors(range_applies, headers, etag, last_modified)
    condition = only_s3_errors(write_condition, headers)
    if condition is not None:
        only_s3_errors(condition.check, etag or None)
