"""gateway.checksums: digests against published check values, botocore's own checksum
classes and bitwise reference CRCs; header parsing and every BodyVerifier failure."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import zlib

import pytest
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.checksums import ALGORITHMS, BodyVerifier, Checksum, requested_checksum
from gateway.errors import S3Error


def _reflected_crc(data: bytes, poly: int, bits: int) -> int:
    """Textbook bit-at-a-time reflected CRC with all-ones init and final xor."""
    mask = (1 << bits) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ mask


REFERENCE = {
    "CRC32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "CRC32C": lambda d: _reflected_crc(d, 0x82F63B78, 32).to_bytes(4, "big"),
    "CRC64NVME": lambda d: _reflected_crc(d, 0x9A6C9329AC4BC9B5, 64).to_bytes(8, "big"),
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(("algorithm", "check_value"), [
    ("CRC32", 0xCBF43926), ("CRC32C", 0xE3069283), ("CRC64NVME", 0xAE8B14860A799888),
])
def test_published_crc_check_values(algorithm: str, check_value: int) -> None:
    checksum = Checksum(algorithm)
    checksum.update(b"123456789")
    size = 8 if algorithm == "CRC64NVME" else 4
    assert checksum.b64() == b64(check_value.to_bytes(size, "big"))


def test_well_known_values_of_an_empty_body() -> None:
    expected = {"CRC32": "AAAAAA==", "CRC32C": "AAAAAA==", "CRC64NVME": "AAAAAAAAAAA=",
                "SHA1": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
                "SHA256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
    assert {a: Checksum(a).b64() for a in ALGORITHMS} == expected


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8),
       algorithm=st.sampled_from(ALGORITHMS))
def test_streaming_matches_references_at_any_split(data: bytes, cuts: list[int],
                                                   algorithm: str) -> None:
    checksum = Checksum(algorithm.lower())
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in zip(points, points[1:], strict=False):
        checksum.update(memoryview(data)[a:b])
    assert checksum.digest() == REFERENCE[algorithm](data)


@pytest.mark.parametrize(("algorithm", "botocore_cls"), [
    ("CRC32", Crc32Checksum), ("SHA1", Sha1Checksum), ("SHA256", Sha256Checksum)])
def test_same_base64_as_botocore_sends(algorithm: str, botocore_cls: type) -> None:
    data = random.Random(7).randbytes(100_000)
    ours, theirs = Checksum(algorithm), botocore_cls()
    ours.update(data)
    theirs.update(data)
    assert ours.b64() == theirs.b64digest()


def test_unknown_algorithm() -> None:
    with pytest.raises(S3Error) as caught:
        Checksum("MD4")
    assert caught.value.code == "InvalidRequest"


# -- requested_checksum ----------------------------------------------------------------------

CRC32_OF_HELLO = b64(zlib.crc32(b"hello").to_bytes(4, "big"))


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, (None, None)),
    ({"content-type": "text/plain", "x-amz-checksum-type": "FULL_OBJECT"}, (None, None)),
    ({"x-amz-checksum-crc32": CRC32_OF_HELLO}, ("CRC32", CRC32_OF_HELLO)),
    ({"X-Amz-Checksum-CRC32": CRC32_OF_HELLO, "x-amz-sdk-checksum-algorithm": "crc32"},
     ("CRC32", CRC32_OF_HELLO)),
    ({"x-amz-trailer": "x-amz-checksum-crc64nvme"}, ("CRC64NVME", None)),
    ({"x-amz-trailer": "X-Amz-Checksum-SHA256", "x-amz-sdk-checksum-algorithm": "SHA256"},
     ("SHA256", None)),
])
def test_requested_checksum(headers: dict[str, str], expected: tuple) -> None:
    assert requested_checksum(headers) == expected


@pytest.mark.parametrize(("headers", "fragment"), [
    ({"x-amz-checksum-crc32": CRC32_OF_HELLO, "x-amz-checksum-sha1": "x"}, "single"),
    ({"x-amz-checksum-crc32": CRC32_OF_HELLO, "x-amz-trailer": "x-amz-checksum-crc32c"},
     "single"),
    ({"x-amz-trailer": "x-amz-checksum-crc32, x-amz-checksum-sha1"}, "single"),
    ({"x-amz-checksum-md5": "x"}, "unsupported"),
    ({"x-amz-trailer": "x-amz-checksum-xxhash3"}, "x-amz-trailer"),
    ({"x-amz-trailer": "x-amz-meta-foo"}, "x-amz-trailer"),
    ({"x-amz-sdk-checksum-algorithm": "CRC32"}, "no corresponding"),
    ({"x-amz-sdk-checksum-algorithm": "SHA512", "x-amz-checksum-crc32": CRC32_OF_HELLO},
     "unsupported"),
    ({"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-checksum-crc32": CRC32_OF_HELLO},
     "x-amz-sdk-checksum-algorithm header is invalid"),
    ({"x-amz-checksum-crc32": "not base64!"}, "x-amz-checksum-crc32 header is invalid"),
    ({"x-amz-checksum-crc32": ""}, "x-amz-checksum-crc32 header is invalid"),
    ({"x-amz-checksum-sha256": CRC32_OF_HELLO}, "x-amz-checksum-sha256 header is invalid"),
])
def test_requested_checksum_refusals(headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(S3Error) as caught:
        requested_checksum(headers)
    assert caught.value.code == "InvalidRequest" and fragment in caught.value.message


# -- BodyVerifier ----------------------------------------------------------------------------

BODY = b"The quick brown fox jumps over the lazy dog" * 100


def verifier(**kw: str | None) -> BodyVerifier:
    args: dict[str, str | None] = {"content_md5": None, "payload_sha256": None,
                                   "checksum_algorithm": None, "checksum_expected": None}
    args.update(kw)
    v = BodyVerifier(**args)  # type: ignore[arg-type]
    for at in range(0, len(BODY), 1000):
        v.update(BODY[at:at + 1000])
    return v


def failure(v: BodyVerifier, trailers: dict[str, str] | None = None) -> S3Error:
    with pytest.raises(S3Error) as caught:
        v.finish(trailers)
    return caught.value


def test_everything_matches() -> None:
    v = verifier(content_md5=b64(hashlib.md5(BODY).digest()),
                 payload_sha256=hashlib.sha256(BODY).hexdigest().upper(),
                 checksum_algorithm="crc32c", checksum_expected=b64(REFERENCE["CRC32C"](BODY)))
    v.finish()
    assert v.size == len(BODY)
    assert v.etag == hashlib.md5(BODY).hexdigest()
    assert v.checksum == ("CRC32C", b64(REFERENCE["CRC32C"](BODY)))


def test_no_declarations_still_yields_the_etag() -> None:
    v = verifier()
    v.finish()
    assert (v.etag, v.checksum) == (hashlib.md5(BODY).hexdigest(), None)


@pytest.mark.parametrize("value", ["not base64", b64(b"short"), b64(b"x" * 17), ""])
def test_invalid_content_md5_is_refused_up_front(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        BodyVerifier(content_md5=value, payload_sha256=None, checksum_algorithm=None,
                     checksum_expected=None)
    assert caught.value.code == "InvalidDigest"


def test_content_md5_mismatch() -> None:
    err = failure(verifier(content_md5=b64(hashlib.md5(b"other").digest())))
    assert (err.code, err.message) == (
        "BadDigest", "The Content-MD5 you specified did not match what we received.")


def test_declared_sha256_mismatch() -> None:
    err = failure(verifier(payload_sha256=hashlib.sha256(b"other").hexdigest()))
    assert (err.code, err.status) == ("XAmzContentSHA256Mismatch", 400)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checksum_mismatch_names_the_algorithm(algorithm: str) -> None:
    wrong = b64(REFERENCE[algorithm](b"other"))
    err = failure(verifier(checksum_algorithm=algorithm, checksum_expected=wrong))
    assert (err.code, err.message) == (
        "BadDigest", f"The {algorithm} you specified did not match the calculated checksum.")


def test_sha256_checksum_shares_the_payload_hash() -> None:
    good = b64(hashlib.sha256(BODY).digest())
    v = verifier(payload_sha256=hashlib.sha256(BODY).hexdigest(), checksum_algorithm="SHA256",
                 checksum_expected=good)
    v.finish()
    assert v.checksum == ("SHA256", good)
    bad = verifier(payload_sha256=hashlib.sha256(BODY).hexdigest(), checksum_algorithm="SHA256",
                   checksum_expected=b64(hashlib.sha256(b"x").digest()))
    assert failure(bad).code == "BadDigest"


def test_trailer_checksum() -> None:
    good = b64(REFERENCE["CRC64NVME"](BODY))
    v = verifier(checksum_algorithm="CRC64NVME")
    v.finish({"x-amz-checksum-crc64nvme": good})
    assert v.checksum == ("CRC64NVME", good)
    assert failure(verifier(checksum_algorithm="CRC64NVME")).code == "InvalidRequest"
    other_trailer = {"x-amz-checksum-crc32": b64(REFERENCE["CRC32"](BODY))}
    assert failure(verifier(checksum_algorithm="CRC64NVME"), other_trailer).code == \
        "InvalidRequest"
    malformed = failure(verifier(checksum_algorithm="CRC64NVME"),
                        {"x-amz-checksum-crc64nvme": "AAAA"})
    assert malformed.code == "InvalidRequest"
    wrong = failure(verifier(checksum_algorithm="CRC64NVME"),
                    {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="})
    assert wrong.code == "BadDigest"


def test_checksum_is_none_until_verified() -> None:
    v = verifier(checksum_algorithm="CRC32", checksum_expected="AAAAAA==")
    assert v.checksum is None
    failure(v)
    assert v.checksum is None


def test_fed_from_a_worker_thread() -> None:
    data = random.Random(3).randbytes(3 * 1024 * 1024)
    v = BodyVerifier(content_md5=None, payload_sha256=hashlib.sha256(data).hexdigest(),
                     checksum_algorithm="CRC32", checksum_expected=None)

    async def feed() -> None:
        view = memoryview(data)
        for at in range(0, len(data), 1024 * 1024):
            await asyncio.to_thread(v.update, view[at:at + 1024 * 1024])

    asyncio.run(feed())
    v.finish({"x-amz-checksum-crc32": b64(zlib.crc32(data).to_bytes(4, "big"))})
    assert v.size == len(data) and v.etag == hashlib.md5(data).hexdigest()
