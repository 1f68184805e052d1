"""gateway.sigv4 against the real client: requests signed by botocore's own signers, AWS's
published example signatures, and boto3 talking to a real uvicorn server over HTTP."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
import uvicorn
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError
from botocore.utils import percent_encode
from defusedxml import ElementTree

from gateway.checksums import BodyVerifier, requested_checksum
from gateway.errors import S3Error, render
from gateway.sigv4 import AuthResult, derive_signing_key, verify

ACCESS = "AKIDSHOALTEST"
SECRET = "s3cr3t/with+odd=chars"
CREDS = BotoCredentials(ACCESS, SECRET)
ENDPOINT = "http://gateway.test:9000"
ODD_KEYS = [
    "plain.txt", "with space", "a+b", "100%", "ünïcødé/ключ/鍵", "tilde~x", "eq=1", "amp&x",
    "q?x#y", "  two  spaces ", "(paren)*!'$,;:@", "deep/er//path/", "%2F-literal", "emoji-🙂",
]
EMPTY = hashlib.sha256(b"").hexdigest()


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == ACCESS else None


Wire = tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]


def to_wire(request: AWSRequest) -> Wire:
    """The request as an ASGI server sees it: raw path, raw query, lower-case headers."""
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [(k.lower().encode(), v.encode() if isinstance(v, str) else v)
               for k, v in prepared.headers.items()]
    if not any(k == b"host" for k, _ in headers):
        headers.append((b"host", url.netloc.encode()))
    return prepared.method, url.path.encode(), url.query.encode(), headers


def sign(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"",
         *, unsigned_payload: bool = False, region: str = "us-east-1",
         creds: BotoCredentials = CREDS) -> Wire:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    if unsigned_payload:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(request)
    return to_wire(request)


def presign(method: str, url: str, expires: int = 600, headers: dict[str, str] | None = None,
            region: str = "us-east-1") -> Wire:
    request = AWSRequest(method=method, url=url, headers=headers or {})
    botocore.auth.S3SigV4QueryAuth(CREDS, "s3", region, expires=expires).add_auth(request)
    return to_wire(request)


def check(wire: Wire, now: float | None = None) -> AuthResult | None:
    method, path, query, headers = wire
    return verify(method, path, query, headers, lookup, now)


def error_of(wire: Wire, now: float | None = None) -> S3Error:
    with pytest.raises(S3Error) as caught:
        check(wire, now)
    return caught.value


def with_header(wire: Wire, name: bytes, value: bytes) -> Wire:
    method, path, query, headers = wire
    return method, path, query, [(k, v) for k, v in headers if k != name] + [(name, value)]


# -- AWS's published examples (docs: sig-v4-header-based-auth, sigv4-query-string-auth) ------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = 1369353600.0  # 2013-05-24T00:00:00Z
AWS_CRED = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"


def aws_lookup(key: str) -> str | None:
    return AWS_SECRET if key == "AKIAIOSFODNN7EXAMPLE" else None


def hdrs(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").encode(), v.encode()) for k, v in values.items()]


def test_aws_documented_get_object_example() -> None:
    auth = verify("GET", b"/test.txt", b"", hdrs(
        host="examplebucket.s3.amazonaws.com", range="bytes=0-9", x_amz_content_sha256=EMPTY,
        x_amz_date="20130524T000000Z",
        authorization=f"AWS4-HMAC-SHA256 Credential={AWS_CRED},SignedHeaders=host;range;"
        "x-amz-content-sha256;x-amz-date,Signature="
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), aws_lookup, AWS_NOW)
    assert auth is not None
    assert (auth.payload_mode, auth.payload_sha256) == ("signed", EMPTY)
    assert auth.scope == "20130524/us-east-1/s3/aws4_request"
    assert auth.amz_date == "20130524T000000Z"


def test_aws_documented_put_object_example_with_date_header() -> None:
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    auth = verify("PUT", b"/test%24file.text", b"", hdrs(
        host="examplebucket.s3.amazonaws.com", date="Fri, 24 May 2013 00:00:00 GMT",
        x_amz_storage_class="REDUCED_REDUNDANCY", x_amz_content_sha256=body_hash,
        x_amz_date="20130524T000000Z",
        authorization=f"AWS4-HMAC-SHA256 Credential={AWS_CRED},SignedHeaders=date;host;"
        "x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature="
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"), aws_lookup, AWS_NOW)
    assert auth is not None and auth.payload_sha256 == body_hash


def test_aws_documented_presigned_url_example() -> None:
    query = (b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524"
             b"%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
             b"&X-Amz-SignedHeaders=host&X-Amz-Signature="
             b"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    headers = hdrs(host="examplebucket.s3.amazonaws.com")
    auth = verify("GET", b"/test.txt", query, headers, aws_lookup, AWS_NOW + 86000)
    assert auth is not None and auth.payload_mode == "unsigned"
    with pytest.raises(S3Error) as caught:
        verify("GET", b"/test.txt", query, headers, aws_lookup, AWS_NOW + 86401)
    assert (caught.value.code, caught.value.message) == ("AccessDenied", "Request has expired")


# -- botocore-signed requests ----------------------------------------------------------------


def test_anonymous_request_returns_none() -> None:
    assert verify("GET", b"/bkt/key", b"list-type=2", hdrs(host="h"), lookup) is None


@pytest.mark.parametrize("key", ODD_KEYS)
def test_get_and_put_with_odd_keys(key: str) -> None:
    path = "/bkt/" + percent_encode(key, safe="/~")
    got = check(sign("GET", ENDPOINT + path))
    assert got is not None and got.access_key == ACCESS
    body = b"hello " + key.encode()
    put = check(sign("PUT", ENDPOINT + path, {"Content-Type": "text/plain",
                                              "x-amz-meta-name": "v  with   runs "}, body))
    assert put is not None
    assert put.payload_sha256 == hashlib.sha256(body).hexdigest()
    assert put.payload_mode == "signed"


@pytest.mark.parametrize("key", ODD_KEYS)
def test_presigned_get_and_put_with_odd_keys(key: str) -> None:
    url = ENDPOINT + "/bkt/" + percent_encode(key, safe="/~")
    assert check(presign("GET", url)) is not None
    put = check(presign("PUT", url + "?x-id=PutObject", headers={"Content-Type": "image/png"}))
    assert put is not None and put.payload_mode == "unsigned" and put.payload_sha256 is None


def test_query_parameters_are_sorted_and_encoded() -> None:
    url = ENDPOINT + "/bkt?prefix=a%20b%2Bc%2F%C3%BC&list-type=2&delimiter=%2F&uploads&z=&a=2&a=1"
    assert check(sign("GET", url)) is not None


def test_unsigned_payload_and_other_region() -> None:
    auth = check(sign("PUT", ENDPOINT + "/bkt/k", body=b"x", unsigned_payload=True,
                      region="eu-west-3"))
    assert auth is not None
    assert auth.payload_mode == "unsigned" and auth.payload_sha256 is None
    assert auth.scope.split("/")[1:] == ["eu-west-3", "s3", "aws4_request"]
    assert auth.signing_key == derive_signing_key(SECRET, auth.scope[:8], "eu-west-3")


@pytest.mark.parametrize(("declared", "mode"), [
    ("UNSIGNED-PAYLOAD", "unsigned"),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "streaming-signed"),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "streaming-signed-trailer"),
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "streaming-unsigned-trailer"),
    (EMPTY, "signed"),
])
def test_payload_mode_follows_x_amz_content_sha256(declared: str, mode: str) -> None:
    # botocore's generic SigV4 signer keeps a preset X-Amz-Content-SHA256 (the S3 one
    # recomputes it), so it can sign each streaming declaration.
    request = AWSRequest(method="PUT", url=ENDPOINT + "/bkt/key",
                         headers={"X-Amz-Content-SHA256": declared})
    botocore.auth.SigV4Auth(CREDS, "s3", "us-east-1").add_auth(request)
    auth = check(to_wire(request))
    assert auth is not None and auth.payload_mode == mode
    assert auth.seed_signature == request.headers["Authorization"].rsplit("=", 1)[1]


def test_date_header_instead_of_x_amz_date() -> None:
    wire = sign("GET", ENDPOINT + "/bkt/k", {"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert not any(k == b"x-amz-date" for k, _ in wire[3])
    assert check(wire) is not None


def test_repeated_headers_are_joined_with_commas() -> None:
    request = AWSRequest(method="GET", url=ENDPOINT + "/bkt/k")
    request.headers.add_header("x-amz-meta-multi", "one")  # type: ignore[attr-defined]
    request.headers.add_header("x-amz-meta-multi", "  two   three ")  # type: ignore[attr-defined]
    botocore.auth.S3SigV4Auth(CREDS, "s3", "us-east-1").add_auth(request)
    # prepare() folds repeats into one header; a client may send them as separate lines.
    lines = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    assert [v for k, v in lines if k == b"x-amz-meta-multi"] == [b"one", b"  two   three "]
    assert check(("GET", b"/bkt/k", b"", [*lines, (b"host", b"gateway.test:9000")])) is not None


def test_path_re_encoded_by_client_or_proxy_still_verifies() -> None:
    # Signed in AWS canonical form, sent with '+' raw and lower-case escapes.
    method, path, query, headers = sign("GET", ENDPOINT + "/bkt/a%2Bb%C3%BC~")
    assert check((method, b"/bkt/a+b%c3%bc~", query, headers)) is not None
    # Signed exactly as sent, though not canonical: botocore signs the path it is given.
    assert check(sign("GET", ENDPOINT + "/bkt/a+b=c&d")) is not None


def test_signing_keys_are_cached() -> None:
    wire = sign("GET", ENDPOINT + "/bkt/k")
    check(wire)
    hits = derive_signing_key.cache_info().hits
    check(wire)
    assert derive_signing_key.cache_info().hits == hits + 1


# -- every error -----------------------------------------------------------------------------


def test_unknown_access_key() -> None:
    wire = sign("GET", ENDPOINT + "/bkt/k", creds=BotoCredentials("AKIDNOBODY", SECRET))
    err = error_of(wire)
    assert (err.code, err.status, err.fields["AWSAccessKeyId"]) == (
        "InvalidAccessKeyId", 403, "AKIDNOBODY")


def test_wrong_secret_is_signature_mismatch_with_debug_fields() -> None:
    err = error_of(sign("GET", ENDPOINT + "/bkt/k?acl",
                        creds=BotoCredentials(ACCESS, "not-the-secret")))
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)
    assert err.fields["CanonicalRequest"].startswith("GET\n/bkt/k\nacl=\n")
    assert err.fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    body = render(err).body
    assert ElementTree.fromstring(body).findtext("Code") == "SignatureDoesNotMatch"


@pytest.mark.parametrize("tamper", ["method", "path", "query", "header", "body-hash"])
def test_tampering_breaks_the_signature(tamper: str) -> None:
    method, path, query, headers = sign("PUT", ENDPOINT + "/bkt/k?tagging", {
        "x-amz-meta-a": "1"}, b"body")
    if tamper == "method":
        method = "POST"
    elif tamper == "path":
        path = b"/bkt/K"
    elif tamper == "query":
        query = b"tagging&versionId=1"
    elif tamper == "header":
        headers = [(k, b"2" if k == b"x-amz-meta-a" else v) for k, v in headers]
    else:
        headers = [(k, EMPTY.encode() if k == b"x-amz-content-sha256" else v)
                   for k, v in headers]
    assert error_of((method, path, query, headers)).code == "SignatureDoesNotMatch"


def test_presigned_tampering_and_signature_swap() -> None:
    method, path, query, headers = presign("GET", ENDPOINT + "/bkt/k")
    assert error_of((method, b"/bkt/other", query, headers)).code == "SignatureDoesNotMatch"
    assert error_of(("PUT", path, query, headers)).code == "SignatureDoesNotMatch"
    longer = query.replace(b"X-Amz-Expires=600", b"X-Amz-Expires=6000")
    assert error_of((method, path, longer, headers)).code == "SignatureDoesNotMatch"


def test_unsigned_amz_header_is_refused() -> None:
    wire = with_header(sign("PUT", ENDPOINT + "/bkt/k", body=b"x"), b"x-amz-acl",
                       b"public-read")
    err = error_of(wire)
    assert (err.code, err.fields["HeadersNotSigned"]) == ("AccessDenied", "x-amz-acl")
    presigned = with_header(presign("PUT", ENDPOINT + "/bkt/k"), b"x-amz-tagging", b"a=b")
    assert error_of(presigned).fields["HeadersNotSigned"] == "x-amz-tagging"


@pytest.mark.parametrize(("authorization", "fragment"), [
    ("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host", "three components"),
    ("AWS4-HMAC-SHA256 Credential={ak}/20200101/us-east-1/s3, SignedHeaders=host, "
     "Signature=ab", "mal-formed"),
    ("AWS4-HMAC-SHA256 Credential={ak}/2020011/us-east-1/s3/aws4_request, SignedHeaders=host, "
     "Signature=ab", "mal-formed"),
    ("AWS4-HMAC-SHA256 Credential={ak}/{date}/us-east-1/ec2/aws4_request, SignedHeaders=host, "
     "Signature=ab", 'incorrect service "ec2"'),
    ("AWS4-HMAC-SHA256 Credential={ak}/19990101/us-east-1/s3/aws4_request, "
     "SignedHeaders=host, Signature=ab", "Invalid credential date"),
    ("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=x-amz-date, Signature=ab",
     "must include host"),
])
def test_malformed_authorization_header(authorization: str, fragment: str) -> None:
    method, path, query, headers = sign("GET", ENDPOINT + "/bkt/k")
    date = dict(headers)[b"x-amz-date"].decode()[:8]
    value = authorization.format(ak=ACCESS, date=date,
                                 cred=f"{ACCESS}/{date}/us-east-1/s3/aws4_request")
    err = error_of(with_header((method, path, query, headers), b"authorization", value.encode()))
    assert err.code == "AuthorizationHeaderMalformed" and fragment in err.message


def test_other_auth_mechanisms_are_refused() -> None:
    v2 = with_header(sign("GET", ENDPOINT + "/bkt/k"), b"authorization", b"AWS AKID:c2lnbmF0dXJl")
    assert error_of(v2).code == "InvalidRequest"
    v2_query = ("GET", b"/bkt/k", b"AWSAccessKeyId=AKID&Expires=1&Signature=x", hdrs(host="h"))
    assert error_of(v2_query).code == "InvalidRequest"
    method, path, query, headers = presign("GET", ENDPOINT + "/bkt/k")
    both = (method, path, query, sign("GET", ENDPOINT + "/bkt/k")[3])
    assert error_of(both).code == "InvalidArgument"


def test_request_time_skew() -> None:
    wire = sign("GET", ENDPOINT + "/bkt/k")
    assert check(wire, time.time() + 14 * 60) is not None
    assert check(wire, time.time() - 14 * 60) is not None
    for offset in (16 * 60, -16 * 60):
        err = error_of(wire, time.time() + offset)
        assert (err.code, err.status) == ("RequestTimeTooSkewed", 403)
    bad_date = with_header(wire, b"x-amz-date", b"yesterday")
    assert error_of(bad_date).code == "AccessDenied"
    no_date = (wire[0], wire[1], wire[2], [(k, v) for k, v in wire[3] if k != b"x-amz-date"])
    assert error_of(no_date).code == "AccessDenied"


def test_presigned_expiry_window() -> None:
    wire = presign("GET", ENDPOINT + "/bkt/k", expires=60)
    assert check(wire, time.time() + 50) is not None
    err = error_of(wire, time.time() + 3600)  # far past 60 s, well within the 15 min skew
    assert (err.code, err.message) == ("AccessDenied", "Request has expired")
    assert error_of(wire, time.time() - 3600).message == "Request is not valid yet"


@pytest.mark.parametrize(("edit", "fragment"), [
    ((b"X-Amz-Expires=600", b"X-Amz-Expires=0"), "X-Amz-Expires"),
    ((b"X-Amz-Expires=600", b"X-Amz-Expires=604801"), "X-Amz-Expires"),
    ((b"X-Amz-Expires=600", b"X-Amz-Expires=ten"), "X-Amz-Expires"),
    ((b"&X-Amz-SignedHeaders=host", b""), "requires the X-Amz-Algorithm"),
    ((b"AWS4-HMAC-SHA256", b"AWS4-HMAC-SHA1"), "only supports"),
    ((b"%2Fus-east-1%2Fs3%2F", b"%2Fus-east-1%2F"), "X-Amz-Credential"),
    ((b"X-Amz-Date=2", b"X-Amz-Date=x2"), "ISO8601"),
])
def test_malformed_presigned_query(edit: tuple[bytes, bytes], fragment: str) -> None:
    method, path, query, headers = presign("GET", ENDPOINT + "/bkt/k")
    assert edit[0] in query
    err = error_of((method, path, query.replace(*edit), headers))
    assert err.code == "AuthorizationQueryParametersError" and fragment in err.message


def test_x_amz_content_sha256_missing_or_invalid() -> None:
    wire = sign("GET", ENDPOINT + "/bkt/k")
    missing = (wire[0], wire[1], wire[2],
               [(k, v) for k, v in wire[3] if k != b"x-amz-content-sha256"])
    err = error_of(missing)
    assert err.code == "InvalidRequest" and "x-amz-content-sha256" in err.message
    assert error_of(with_header(wire, b"x-amz-content-sha256", b"abc")).code == "InvalidArgument"


# -- boto3 over a real socket ----------------------------------------------------------------


async def _app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """The smallest S3-ish server: verify, then PUT stores and GET returns the body."""
    store: dict[bytes, bytes] = _app.store  # type: ignore[attr-defined]
    try:
        auth = verify(scope["method"], scope["raw_path"], scope["query_string"],
                      scope["headers"], lookup, time.time() + _app.clock_offset)  # type: ignore[attr-defined]
        if auth is None:
            raise S3Error("AccessDenied", "Access Denied")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["method"] == "PUT":
            algorithm, expected = requested_checksum(headers)
            verifier = BodyVerifier(content_md5=headers.get("content-md5"),
                                    payload_sha256=auth.payload_sha256,
                                    checksum_algorithm=algorithm, checksum_expected=expected)
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            verifier.update(body)
            verifier.finish()
            store[scope["raw_path"]] = body
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"etag", f'"{verifier.etag}"'.encode()),
                                    (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["raw_path"] not in store:
            raise S3Error("NoSuchKey", "The specified key does not exist.")
        body = store[scope["raw_path"]]
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    except S3Error as err:
        await render(err)(scope, receive, send)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    _app.store = {}  # type: ignore[attr-defined]
    _app.clock_offset = 0.0  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=0, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def client(endpoint: str, secret: str = SECRET):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS, aws_secret_access_key=secret,
                        # boto3 presigns with SigV2 unless told otherwise; S3 wants SigV4.
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def test_boto3_put_get_and_presigned_urls_over_http(endpoint: str) -> None:
    s3 = client(endpoint)
    for key in ODD_KEYS:
        body = f"body of {key}".encode()
        put = s3.put_object(Bucket="bkt", Key=key, Body=body, ChecksumAlgorithm="CRC32C")
        assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == body
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": key})
        with urllib.request.urlopen(url) as response:
            assert response.read() == body
        put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "bkt", "Key": key})
        urllib.request.urlopen(urllib.request.Request(put_url, data=b"new", method="PUT"))
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == b"new"


def test_boto3_sees_s3_errors_over_http(endpoint: str) -> None:
    with pytest.raises(ClientError) as caught:
        client(endpoint, secret="wrong").get_object(Bucket="bkt", Key="plain.txt")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    url = client(endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": "bkt", "Key": "plain.txt"}, ExpiresIn=60)
    _app.clock_offset = 120.0  # type: ignore[attr-defined]  # the server's clock moves on
    try:
        with pytest.raises(urllib.error.HTTPError) as expired:
            urllib.request.urlopen(url)
    finally:
        _app.clock_offset = 0.0  # type: ignore[attr-defined]
    assert expired.value.code == 403 and b"Request has expired" in expired.value.read()
