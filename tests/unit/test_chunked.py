"""gateway.chunked: AWS's published chunk-signature examples, bodies built by botocore's own
aws-chunked writer, arbitrary network split points (hypothesis), and every failure."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import random
from collections.abc import AsyncIterator
from dataclasses import replace

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.httpchecksum import _CHECKSUM_CLS, AwsChunkedWrapper
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.checksums import BodyVerifier, requested_checksum
from gateway.chunked import MAX_SIGNED_CHUNK, ChunkedDecoder
from gateway.errors import S3Error
from gateway.sigv4 import AuthResult, verify

# -- AWS's documented example (sigv4-streaming and sigv4-streaming-trailers) -----------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_NOW = 1369353600.0  # 2013-05-24T00:00:00Z
AWS_CRED = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
AWS_DATA = b"a" * 66560
AWS_BODY = (
    b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
    + b"a" * 65536
    + b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    b"\r\n" + b"a" * 1024
    + b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    b"\r\n\r\n"
)
AWS_TRAILER_BODY = (
    b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
    + b"a" * 65536
    + b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
    b"\r\n" + b"a" * 1024
    + b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
    b"\r\nx-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:"
    b"d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n"
)


def _aws_auth(content_sha256: str, signed: str, signature: str, **extra: str) -> AuthResult:
    """The documented example's seed request, verified by gateway.sigv4 itself."""
    headers = {"host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
               "x-amz-storage-class": "REDUCED_REDUNDANCY", "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": "66560", "x-amz-content-sha256": content_sha256,
               "authorization": f"AWS4-HMAC-SHA256 Credential={AWS_CRED},SignedHeaders={signed},"
               f"Signature={signature}", **{k.replace("_", "-"): v for k, v in extra.items()}}
    auth = verify("PUT", b"/examplebucket/chunkObject.txt", b"",
                  [(k.encode(), v.encode()) for k, v in headers.items()],
                  lambda key: AWS_SECRET if key == "AKIAIOSFODNN7EXAMPLE" else None, AWS_NOW)
    assert auth is not None
    return auth


AWS_AUTH = _aws_auth(
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
    "x-amz-decoded-content-length;x-amz-storage-class",
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", content_length="66824")
AWS_TRAILER_AUTH = _aws_auth(
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
    "x-amz-storage-class;x-amz-trailer",
    "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    x_amz_trailer="x-amz-checksum-crc32c")


# -- a chunk signer written from the AWS doc (checked against its example below) -------------


def _key(secret: str, date: str, region: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(key: bytes, kind: str, auth: AuthResult, previous: str, last_line: str) -> str:
    parts = [f"AWS4-HMAC-SHA256-{kind}", auth.amz_date, auth.scope, previous]
    if kind == "PAYLOAD":
        parts.append(hashlib.sha256(b"").hexdigest())
    message = "\n".join([*parts, last_line])
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def encode_signed(auth: AuthResult, secret: str, data: bytes, sizes: list[int],
                  trailers: dict[str, str] | None = None, blank_before_trailers: bool = False,
                  ) -> bytes:
    """aws-chunked with chunk signatures; ``sizes`` are the data chunk sizes, in order."""
    key = _key(secret, auth.scope[:8], auth.scope.split("/")[1])
    previous, out, at = auth.seed_signature, [], 0
    for size in [*sizes, 0]:
        chunk = data[at:at + size]
        at += size
        previous = _sign(key, "PAYLOAD", auth, previous, hashlib.sha256(chunk).hexdigest())
        out.append(b"%x;chunk-signature=%s\r\n" % (size, previous.encode()))
        if size:
            out.append(chunk + b"\r\n")
    assert at == len(data)
    if trailers is None:
        return b"".join(out) + b"\r\n"
    canonical = "".join(f"{k}:{v}\n" for k, v in sorted(trailers.items()))
    signature = _sign(key, "TRAILER", auth, previous,
                      hashlib.sha256(canonical.encode()).hexdigest())
    lines = "".join(f"{k}:{v}\r\n" for k, v in trailers.items())
    blank = "\r\n" if blank_before_trailers else ""
    return b"".join(out) + f"{blank}{lines}x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in zip(points, points[1:], strict=False)]


async def _source(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


def decode(auth: AuthResult, pieces: list[bytes], length: int | None = None,
           ) -> tuple[bytes, dict[str, str]]:
    decoder = ChunkedDecoder(auth, length)

    async def run() -> bytes:
        return b"".join([p async for p in decoder.decode(_source(pieces))])

    return asyncio.run(run()), decoder.trailers


def refused(auth: AuthResult, body: bytes, length: int | None = 66560) -> S3Error:
    with pytest.raises(S3Error) as caught:
        decode(auth, [body], length)
    return caught.value


# -- the documented examples -----------------------------------------------------------------


def test_test_signer_reproduces_the_aws_examples() -> None:
    assert encode_signed(AWS_AUTH, AWS_SECRET, AWS_DATA, [65536, 1024]) == AWS_BODY
    assert encode_signed(AWS_TRAILER_AUTH, AWS_SECRET, AWS_DATA, [65536, 1024],
                         {"x-amz-checksum-crc32c": "sOO8/Q=="}) == AWS_TRAILER_BODY


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(AWS_TRAILER_BODY)), max_size=40))
def test_aws_examples_decode_at_any_split(cuts: list[int]) -> None:
    assert decode(AWS_AUTH, split(AWS_BODY, cuts), 66560) == (AWS_DATA, {})
    data, trailers = decode(AWS_TRAILER_AUTH, split(AWS_TRAILER_BODY, cuts), 66560)
    assert data == AWS_DATA and trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}


def test_blank_line_before_trailers_is_accepted() -> None:
    body = encode_signed(AWS_TRAILER_AUTH, AWS_SECRET, AWS_DATA, [65536, 1024],
                         {"x-amz-checksum-crc32c": "sOO8/Q=="}, blank_before_trailers=True)
    assert decode(AWS_TRAILER_AUTH, [body], 66560)[1] == {"x-amz-checksum-crc32c": "sOO8/Q=="}


# -- requests signed by botocore, bodies of any shape ---------------------------------------

CREDS = BotoCredentials("AKIDCHUNK", "chunk-secret")


def botocore_auth(content_sha256: str, extra: dict[str, str] | None = None) -> AuthResult:
    request = AWSRequest(method="PUT", url="http://gw.test/bkt/key", headers={
        "X-Amz-Content-SHA256": content_sha256, "Content-Encoding": "aws-chunked", **(extra or {})})
    botocore.auth.SigV4Auth(CREDS, "s3", "us-west-2").add_auth(request)
    prepared = request.prepare()
    headers = [(k.lower().encode(), v.encode()) for k, v in prepared.headers.items()]
    auth = verify("PUT", b"/bkt/key", b"", [*headers, (b"host", b"gw.test")],
                  lambda key: "chunk-secret" if key == "AKIDCHUNK" else None)
    assert auth is not None
    return auth


SIGNED = botocore_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
SIGNED_TRAILER = botocore_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                               {"X-Amz-Trailer": "x-amz-checksum-sha256"})


@settings(max_examples=40, deadline=None)
@given(length=st.integers(0, 40000), chunk=st.integers(8192, 20000), seed=st.integers(0, 9),
       cuts=st.lists(st.integers(0, 50000), max_size=30), trailer=st.booleans())
def test_signed_bodies_round_trip(length: int, chunk: int, seed: int, cuts: list[int],
                                  trailer: bool) -> None:
    data = random.Random(seed).randbytes(length)
    sizes = [chunk] * (length // chunk) + ([length % chunk] if length % chunk else [])
    if trailer:
        expected = {"x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode()}
        body = encode_signed(SIGNED_TRAILER, "chunk-secret", data, sizes, expected)
        got, trailers = decode(SIGNED_TRAILER, split(body, cuts), length)
        assert (got, trailers) == (data, expected)
        verifier = BodyVerifier(content_md5=None, payload_sha256=None,
                                checksum_algorithm="SHA256", checksum_expected=None)
        verifier.update(got)
        verifier.finish(trailers)
        assert verifier.checksum == ("SHA256", expected["x-amz-checksum-sha256"])
    else:
        body = encode_signed(SIGNED, "chunk-secret", data, sizes)
        assert decode(SIGNED, split(body, cuts), length) == (data, {})


@settings(max_examples=30, deadline=None)
@given(length=st.integers(0, 20000), chunk=st.integers(64, 9000), seed=st.integers(0, 9),
       cuts=st.lists(st.integers(0, 40000), max_size=30),
       algorithm=st.sampled_from(["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]))
def test_botocore_unsigned_trailer_bodies(length: int, chunk: int, seed: int, cuts: list[int],
                                          algorithm: str) -> None:
    """The body botocore itself sends for STREAMING-UNSIGNED-PAYLOAD-TRAILER, end to end:
    sigv4 -> requested_checksum -> ChunkedDecoder -> BodyVerifier."""
    data = random.Random(seed).randbytes(length)
    name = f"x-amz-checksum-{algorithm}"
    headers = {"Content-Encoding": "aws-chunked", "X-Amz-Trailer": name,
               "X-Amz-Decoded-Content-Length": str(length)}
    request = AWSRequest(method="PUT", url="http://gw.test/bkt/key", headers=headers)
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "name": name,
                                                         "algorithm": algorithm}}
    botocore.auth.S3SigV4Auth(CREDS, "s3", "us-west-2").add_auth(request)
    wire = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    auth = verify("PUT", b"/bkt/key", b"", [*wire, (b"host", b"gw.test")],
                  lambda key: "chunk-secret")
    assert auth is not None and auth.payload_mode == "streaming-unsigned-trailer"
    body = AwsChunkedWrapper(io.BytesIO(data), checksum_cls=_CHECKSUM_CLS[algorithm],
                             checksum_name=name, chunk_size=chunk).read()
    got, trailers = decode(auth, split(body, cuts), length)
    assert got == data
    declared, expected = requested_checksum({k.decode(): v.decode() for k, v in wire})
    assert (declared, expected) == (algorithm.upper(), None)
    verifier = BodyVerifier(content_md5=None, payload_sha256=auth.payload_sha256,
                            checksum_algorithm=declared, checksum_expected=None)
    verifier.update(got)
    verifier.finish(trailers)
    reference = _CHECKSUM_CLS[algorithm]()
    reference.update(data)
    assert verifier.checksum == (algorithm.upper(), reference.b64digest())


def test_signed_chunks_are_yielded_before_the_body_ends() -> None:
    data = random.Random(1).randbytes(5 * 10000)
    body = encode_signed(SIGNED, "chunk-secret", data, [10000] * 5)
    pieces = split(body, list(range(0, len(body), 1000)))
    pulled = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal pulled
        for piece in pieces:
            pulled += 1
            yield piece

    async def first() -> bytes:
        async for piece in ChunkedDecoder(SIGNED, len(data)).decode(source()):
            return piece
        raise AssertionError("nothing decoded")

    assert data.startswith(asyncio.run(first()))
    assert pulled < len(pieces) / 4  # memory is bounded by a chunk, not by the body


# -- every failure ---------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 1, 50, 88, 89, 5000, 65625, 65626, 65627, 66700, 66820,
                                 len(AWS_BODY) - 3, len(AWS_BODY) - 1])
def test_truncated_body_is_incomplete(cut: int) -> None:
    assert refused(AWS_AUTH, AWS_BODY[:cut]).code == "IncompleteBody"


def test_missing_final_crlf_is_tolerated() -> None:
    assert decode(AWS_AUTH, [AWS_BODY[:-2]], 66560)[0] == AWS_DATA


@pytest.mark.parametrize(("old", "new"), [
    (b"a" * 200, b"a" * 199 + b"b"),  # data changed
    (b"=b6c6ea8a", b"=b6c6ea8b"),  # final chunk signature changed
    (b"=0055627c", b"=1055627c"),  # a middle chunk signature changed
    (b";chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648", b""),
])
def test_tampered_chunks_are_refused(old: bytes, new: bytes) -> None:
    assert refused(AWS_AUTH, AWS_BODY.replace(old, new, 1)).code == "SignatureDoesNotMatch"


def test_reordered_or_replayed_chunks_are_refused() -> None:
    data = bytes(range(256)) * 128  # 32 KiB
    body = encode_signed(SIGNED, "chunk-secret", data, [16384, 16384])
    framed = len(b"4000;chunk-signature=\r\n") + 64 + 16384 + 2
    chunk1, chunk2, final = body[:framed], body[framed:2 * framed], body[2 * framed:]
    assert chunk2.startswith(b"4000;") and final.startswith(b"0;")
    swapped = chunk2 + chunk1 + final
    assert refused(SIGNED, swapped, len(data)).code == "SignatureDoesNotMatch"
    other = replace(SIGNED, seed_signature="0" * 64)  # the same body under another request
    assert refused(other, body, len(data)).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("length", [66559, 66561, 0])
def test_decoded_length_must_match(length: int) -> None:
    assert refused(AWS_AUTH, AWS_BODY, length).code == "IncompleteBody"


@pytest.mark.parametrize(("body", "code"), [
    (b"zz;chunk-signature=00\r\n", "InvalidChunkSizeError"),
    (b";chunk-signature=00\r\n", "InvalidChunkSizeError"),
    (b"%x;chunk-signature=00\r\n" % (MAX_SIGNED_CHUNK + 1), "InvalidChunkSizeError"),
    (b"1" * 5000, "IncompleteBody"),
    (AWS_BODY.replace(b"a\r\n400;", b"aXX400;", 1), "IncompleteBody"),
    (AWS_BODY + b"junk", "IncompleteBody"),
    (AWS_BODY[:-2] + b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n", "IncompleteBody"),
])
def test_malformed_framing(body: bytes, code: str) -> None:
    assert refused(AWS_AUTH, body).code == code


def test_small_chunks_before_the_last_are_refused_when_signed() -> None:
    data = b"x" * 300
    body = encode_signed(SIGNED, "chunk-secret", data, [100, 100, 100])
    assert refused(SIGNED, body, 300).code == "InvalidChunkSizeError"
    assert decode(SIGNED, [encode_signed(SIGNED, "chunk-secret", data, [300])], 300)[0] == data


@pytest.mark.parametrize(("old", "new", "code"), [
    (b"sOO8/Q==", b"sOO8/A==", "SignatureDoesNotMatch"),
    (b"x-amz-trailer-signature:d81f", b"x-amz-trailer-signature:081f", "SignatureDoesNotMatch"),
    (b"x-amz-trailer-signature:", b"x-amz-other-trailer:", "SignatureDoesNotMatch"),
    (b"x-amz-checksum-crc32c:sOO8/Q==", b"no colon here", "IncompleteBody"),
])
def test_tampered_trailers_are_refused(old: bytes, new: bytes, code: str) -> None:
    assert refused(AWS_TRAILER_AUTH, AWS_TRAILER_BODY.replace(old, new)).code == code


def test_only_streaming_modes_decode() -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder(replace(AWS_AUTH, payload_mode="signed"), None)
