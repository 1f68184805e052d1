"""cluster.nodeauth: signing, verification, replay and skew windows, nonce memory."""

from __future__ import annotations

import pytest

from cluster.nodeauth import (
    AUTH_HEADER,
    HASH_HEADER,
    NONCE_HEADER,
    TIME_HEADER,
    AuthError,
    Verifier,
    content_hash,
    sign,
)

SECRET = b"cluster-secret"
T0 = 1_700_000_000.0
BODY_HASH = content_hash(b"shard bytes")


def signed(method: str = "PUT", path: str = "/shards/b.0", now: float = T0) -> dict[str, str]:
    return sign(SECRET, method, path, BODY_HASH, now=now)


def test_content_hash_is_blake3_hex() -> None:
    # Known BLAKE3 digest of the empty input.
    assert content_hash(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def test_sign_headers_shape() -> None:
    h = signed()
    assert h[TIME_HEADER] == str(int(T0))
    assert len(bytes.fromhex(h[NONCE_HEADER])) == 16
    assert h[HASH_HEADER] == BODY_HASH
    assert len(bytes.fromhex(h[AUTH_HEADER])) == 32
    assert signed()[NONCE_HEADER] != h[NONCE_HEADER]


def test_round_trip_accepts() -> None:
    v = Verifier(SECRET)
    v.check("PUT", "/shards/b.0", signed(), now=T0 + 1)
    v.check("GET", "/health", signed("GET", "/health"), now=T0 - 5)


@pytest.mark.parametrize(
    ("method", "path", "change"),
    [
        ("POST", "/shards/b.0", {}),  # method tampered
        ("PUT", "/shards/b.1", {}),  # path tampered
        ("PUT", "/shards/b.0?x=1", {}),  # query added
        ("PUT", "/shards/b.0", {HASH_HEADER: content_hash(b"other bytes")}),
        ("PUT", "/shards/b.0", {TIME_HEADER: str(int(T0) + 1)}),
        ("PUT", "/shards/b.0", {NONCE_HEADER: "00" * 16}),
        ("PUT", "/shards/b.0", {AUTH_HEADER: "0" * 64}),
    ],
)
def test_tampered_request_rejected(method: str, path: str, change: dict[str, str]) -> None:
    headers = {**signed(), **change}
    with pytest.raises(AuthError):
        Verifier(SECRET).check(method, path, headers, now=T0)


def test_wrong_secret_rejected() -> None:
    headers = sign(b"another-secret", "PUT", "/shards/b.0", BODY_HASH, now=T0)
    with pytest.raises(AuthError, match="signature"):
        Verifier(SECRET).check("PUT", "/shards/b.0", headers, now=T0)


@pytest.mark.parametrize("missing", [TIME_HEADER, NONCE_HEADER, HASH_HEADER, AUTH_HEADER])
def test_missing_header_rejected(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(AuthError, match="missing"):
        Verifier(SECRET).check("PUT", "/shards/b.0", headers, now=T0)


@pytest.mark.parametrize("bad_time", ["soon", "nan", "inf", ""])
def test_unparseable_time_rejected(bad_time: str) -> None:
    headers = {**signed(), TIME_HEADER: bad_time}
    with pytest.raises(AuthError):
        Verifier(SECRET).check("PUT", "/shards/b.0", headers, now=T0)


@pytest.mark.parametrize("offset", [-31.0, 31.0, -3600.0, 86400.0])
def test_skew_rejected(offset: float) -> None:
    with pytest.raises(AuthError, match="skew"):
        Verifier(SECRET, max_skew=30.0).check("PUT", "/shards/b.0", signed(), now=T0 + offset)


def test_skew_boundary_accepted() -> None:
    v = Verifier(SECRET, max_skew=30.0)
    v.check("PUT", "/shards/b.0", signed(), now=T0 + 30.0)
    v.check("PUT", "/shards/b.0", signed(), now=T0 - 30.0)


def test_replay_rejected_within_window() -> None:
    v = Verifier(SECRET)
    headers = signed()
    v.check("PUT", "/shards/b.0", headers, now=T0)
    with pytest.raises(AuthError, match="replay"):
        v.check("PUT", "/shards/b.0", headers, now=T0 + 10)
    # Outside the window the same request fails on skew: never accepted twice.
    with pytest.raises(AuthError, match="skew"):
        v.check("PUT", "/shards/b.0", headers, now=T0 + 31)


def test_rejected_request_does_not_consume_nonce() -> None:
    v = Verifier(SECRET)
    good = signed()
    forged = {**good, AUTH_HEADER: "f" * 64}
    with pytest.raises(AuthError):
        v.check("PUT", "/shards/b.0", forged, now=T0)
    v.check("PUT", "/shards/b.0", good, now=T0)


def test_nonce_memory_expires_by_time() -> None:
    v = Verifier(SECRET, max_skew=30.0)
    for i in range(100):
        v.check("PUT", "/shards/b.0", signed(now=T0 + i * 0.1), now=T0 + i * 0.1)
    assert len(v) == 100
    # Any call sheds the nonces whose timestamps have left the window.
    v.check("GET", "/health", signed("GET", "/health", now=T0 + 60), now=T0 + 60)
    assert len(v) == 1
