"""Browser form uploads: POST Object with a SigV4-signed policy (boto3's generate_presigned_post)."""

from __future__ import annotations

import os
import uuid
from http.client import HTTPConnection
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MiB = 1024 * 1024


def form_post(url: str, fields: dict[str, str], data: bytes | None, filename: str = "f.bin",
              after: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST a multipart/form-data body as a browser does: fields, then the file, last."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for name, value in fields.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    if data is not None:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 ).encode() + data + b"\r\n"
    for name, value in (after or {}).items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    body += f"--{boundary}--\r\n".encode()
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("POST", parts.path, body=bytes(body), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def code(body: bytes) -> str:
    return ElementTree.fromstring(body).findtext("Code") or ""


@pytest.fixture(scope="module")
def s3(cluster):
    s3 = cluster.client(signature_version="s3v4")
    s3.create_bucket(Bucket="forms")
    return s3


def test_form_upload_with_conditions(s3):
    post = s3.generate_presigned_post(
        "forms", "uploads/${filename}",
        Fields={"success_action_status": "201", "Content-Type": "image/png",
                "x-amz-meta-album": "holiday", "Cache-Control": "max-age=5"},
        Conditions=[["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1000],
                    {"success_action_status": "201"}, ["starts-with", "$Content-Type", "image/"],
                    {"x-amz-meta-album": "holiday"}, ["eq", "$Cache-Control", "max-age=5"]])
    status, headers, body = form_post(post["url"], post["fields"], b"\x89PNG...",
                                      filename="cat.png")
    assert status == 201, body
    doc = ElementTree.fromstring(body)
    assert doc.tag == NS + "PostResponse"
    assert (doc.findtext(NS + "Bucket"), doc.findtext(NS + "Key")) == ("forms", "uploads/cat.png")
    assert doc.findtext(NS + "ETag") == headers["etag"]
    got = s3.get_object(Bucket="forms", Key="uploads/cat.png")
    assert got["Body"].read() == b"\x89PNG..."
    assert (got["ContentType"], got["Metadata"], got["CacheControl"]) == (
        "image/png", {"album": "holiday"}, "max-age=5")


def test_status_codes_and_redirect(s3):
    post = s3.generate_presigned_post("forms", "plain")
    status, _, body = form_post(post["url"], post["fields"], b"x")
    assert (status, body) == (204, b"")
    post = s3.generate_presigned_post("forms", "ok200", Fields={"success_action_status": "200"},
                                      Conditions=[{"success_action_status": "200"}])
    assert form_post(post["url"], post["fields"], b"x")[0] == 200
    target = "https://app.example/done?from=form"
    post = s3.generate_presigned_post("forms", "redir",
                                      Fields={"success_action_redirect": target},
                                      Conditions=[{"success_action_redirect": target}])
    status, headers, _ = form_post(post["url"], post["fields"], b"redirected")
    assert status == 303
    location = urlsplit(headers["location"])
    assert headers["location"].startswith("https://app.example/done?from=form&")
    query = parse_qs(location.query)
    assert (query["bucket"], query["key"]) == (["forms"], ["redir"])
    assert query["etag"] == [s3.head_object(Bucket="forms", Key="redir")["ETag"]]


def test_large_file_and_fields_after_the_file(s3):
    data = os.urandom(6 * MiB + 5)
    post = s3.generate_presigned_post("forms", "big")
    status, _, body = form_post(post["url"], post["fields"], data,
                                after={"x-amz-meta-late": "ignored"})
    assert status == 204, body
    got = s3.get_object(Bucket="forms", Key="big")
    assert got["Body"].read() == data and got["Metadata"] == {}


def test_policy_violations_store_nothing(s3):
    post = s3.generate_presigned_post("forms", "limited",
                                      Conditions=[["content-length-range", 10, 20]])
    status, _, body = form_post(post["url"], post["fields"], b"x" * 21)
    assert (status, code(body)) == (400, "EntityTooLarge")
    status, _, body = form_post(post["url"], post["fields"], b"x" * 9)
    assert (status, code(body)) == (400, "EntityTooSmall")
    big = s3.generate_presigned_post("forms", "limited-big",
                                     Conditions=[["content-length-range", 0, MiB]])
    status, _, body = form_post(big["url"], big["fields"], os.urandom(2 * MiB))
    assert (status, code(body)) == (400, "EntityTooLarge")
    prefixed = s3.generate_presigned_post("forms", "elsewhere",
                                          Conditions=[["starts-with", "$key", "uploads/"]])
    status, _, body = form_post(prefixed["url"], prefixed["fields"], b"x")
    assert (status, code(body)) == (403, "AccessDenied") and b"Condition failed" in body
    extra = dict(post["fields"], **{"x-amz-meta-sneaky": "1"})
    status, _, body = form_post(post["url"], extra, b"x" * 15)
    assert (status, code(body)) == (403, "AccessDenied") and b"Extra input fields" in body
    forged = dict(post["fields"], **{"x-amz-signature": "0" * 64})
    status, _, body = form_post(post["url"], forged, b"x" * 15)
    assert (status, code(body)) == (403, "SignatureDoesNotMatch")
    expired = s3.generate_presigned_post("forms", "late", ExpiresIn=-60)
    status, _, body = form_post(expired["url"], expired["fields"], b"x")
    assert (status, code(body)) == (403, "AccessDenied") and b"expired" in body
    status, _, body = form_post(post["url"], post["fields"], None)
    assert (status, code(body)) == (400, "IncorrectNumberOfFilesInPostRequest")
    public = s3.generate_presigned_post("forms", "public", Fields={"acl": "public-read"},
                                        Conditions=[{"acl": "public-read"}])
    status, _, body = form_post(public["url"], public["fields"], b"x")
    assert (status, code(body)) == (400, "AccessControlListNotSupported")
    anonymous = {"key": "anon"}
    status, _, body = form_post(post["url"], anonymous, b"x")
    assert (status, code(body)) == (403, "AccessDenied")
    for key in ("limited", "limited-big", "elsewhere", "late", "public", "anon"):
        assert s3.list_objects_v2(Bucket="forms", Prefix=key).get("KeyCount") == 0, key


def test_a_private_acl_field_is_accepted(s3):
    post = s3.generate_presigned_post("forms", "private", Fields={"acl": "private"},
                                      Conditions=[{"acl": "private"}])
    status, _, _ = form_post(post["url"], post["fields"], b"x")
    assert status == 204
    assert s3.get_object(Bucket="forms", Key="private")["Body"].read() == b"x"


def test_form_to_missing_bucket(s3):
    post = s3.generate_presigned_post("no-such-bucket", "k")
    status, _, body = form_post(post["url"], post["fields"], b"x")
    assert (status, code(body)) == (404, "NoSuchBucket")
