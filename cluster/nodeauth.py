"""HMAC authentication of node API requests with the cluster secret.

Every request a gateway or peer sends to a storage node carries four headers:

* ``x-shoal-time`` -- unix seconds (integer, as text) when the request was signed;
* ``x-shoal-nonce`` -- 16 random bytes, hex;
* ``x-shoal-content-hash`` -- BLAKE3 hex of the request body (see ``content_hash``);
* ``x-shoal-auth`` -- hex HMAC-SHA256(secret, method, path_qs, time, nonce, content hash
  joined by newlines).

The MAC covers the content hash, so a node that checks the body against that header (after
reading it) knows the body is the one that was signed. ``Verifier.check`` looks only at the
headers, so it can run before a single body byte is read: a request that fails it must be
answered 403 and touch nothing.

Replay protection: a request is accepted only within ``max_skew`` seconds of its timestamp,
and a nonce is remembered until its timestamp leaves that window, so any valid request is
accepted at most once. Memory is bounded by request rate times the window.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import math
import os
import time
from collections.abc import Mapping

import blake3

TIME_HEADER = "x-shoal-time"
NONCE_HEADER = "x-shoal-nonce"
HASH_HEADER = "x-shoal-content-hash"
AUTH_HEADER = "x-shoal-auth"

# Above this size hashing leaves the event loop: blake3 releases the GIL for large buffers,
# and a few MiB take milliseconds, too long to stall every other request. Below it, a
# thread hop costs more than it saves: hashing 1 MiB (a 4+2 shard is 1 MiB + header) took 0.33 ms
# on the loop and 0.50 ms of CPU through asyncio.to_thread (measured on 2 cores).
_OFF_LOOP_BYTES = 2 * 1024 * 1024


class AuthError(Exception):
    """The request is not authentic; the node answers 403 and does nothing else."""


def content_hash(body: bytes) -> str:
    """BLAKE3 hex digest of ``body``: the request content hash and the shard hash alike."""
    return blake3.blake3(body).hexdigest()


async def content_hash_async(body: bytes) -> str:
    """``content_hash`` that runs in a worker thread for large bodies."""
    if len(body) < _OFF_LOOP_BYTES:
        return content_hash(body)
    return await asyncio.to_thread(content_hash, body)


def _mac(secret: bytes, method: str, path_qs: str, ts: str, nonce: str, body_hash: str) -> str:
    msg = "\n".join([method.upper(), path_qs, ts, nonce, body_hash]).encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def sign(
    secret: bytes, method: str, path_qs: str, body_hash: str, now: float | None = None
) -> dict[str, str]:
    """Headers that authenticate one request; sign again for every attempt (fresh nonce)."""
    ts = str(int(time.time() if now is None else now))
    nonce = os.urandom(16).hex()
    return {
        TIME_HEADER: ts,
        NONCE_HEADER: nonce,
        HASH_HEADER: body_hash,
        AUTH_HEADER: _mac(secret, method, path_qs, ts, nonce, body_hash),
    }


class Verifier:
    """Checks request headers against the cluster secret and remembers recent nonces.

    Not thread-safe: use one per event loop.
    """

    def __init__(self, secret: bytes, max_skew: float = 30.0) -> None:
        self._secret = secret
        self._max_skew = max_skew
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []  # heap of (forget-after time, nonce)

    def __len__(self) -> int:
        """Number of nonces currently remembered."""
        return len(self._seen)

    def check(
        self,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        now: float | None = None,
    ) -> None:
        """Return if the request is authentic and new, else raise ``AuthError``.

        ``headers`` must be looked up case-insensitively by lower-case name (Starlette's
        ``Headers`` and aiohttp's ``CIMultiDict`` both are) or already use lower-case keys.
        The nonce is recorded only after the MAC verifies, so forged requests cannot fill
        the nonce memory or block a genuine request.
        """
        now = time.time() if now is None else now
        self._forget(now)
        try:
            ts, nonce, body_hash, mac = (
                headers[TIME_HEADER],
                headers[NONCE_HEADER],
                headers[HASH_HEADER],
                headers[AUTH_HEADER],
            )
        except KeyError as exc:
            raise AuthError(f"missing header {exc.args[0]}") from None
        try:
            signed_at = float(ts)
        except ValueError:
            raise AuthError("bad timestamp") from None
        if not math.isfinite(signed_at) or abs(now - signed_at) > self._max_skew:
            raise AuthError("timestamp outside the allowed clock skew")
        expected = _mac(self._secret, method, path_qs, ts, nonce, body_hash)
        if not hmac.compare_digest(expected.encode(), mac.encode("utf-8", "replace")):
            raise AuthError("bad signature")
        if nonce in self._seen:
            raise AuthError("replayed request")
        self._seen.add(nonce)
        heapq.heappush(self._expiry, (signed_at + self._max_skew, nonce))

    def _forget(self, now: float) -> None:
        # A nonce whose timestamp is older than now - max_skew would fail the skew check
        # anyway, so it no longer needs remembering.
        while self._expiry and self._expiry[0][0] < now:
            _, nonce = heapq.heappop(self._expiry)
            self._seen.discard(nonce)
