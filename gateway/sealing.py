"""Authenticated encryption for secrets at rest: AES-256-GCM and keys derived by HKDF.

A sealed value is ``nonce (12 bytes) || ciphertext || tag (16 bytes)``: ``OVERHEAD`` bytes
longer than the plaintext. Nonces are random; every key sealed here is either used for one
object (at most 2^32 blocks, far below the birthday bound of a 96-bit nonce) or for a few
small records, so random nonces never repeat in practice.

Keys derived from the cluster secret (``derive_key``) are never stored anywhere: every
gateway derives them again from the secret in its environment, so a node's data directory
holds only ciphertext and the wrapped (sealed) keys.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
KEY_BYTES = 32


class SealError(Exception):
    """The sealed bytes are not authentic under this key (wrong key, or tampered with)."""


def derive_key(cluster_secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one ``purpose`` (e.g. "access-key secrets"), from the secret."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"shoal",
                info=purpose.encode()).derive(cluster_secret)


def seal(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad or None)


def unseal(key: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of ``seal(key, plaintext, aad)``; SealError for anything else."""
    if len(sealed) < OVERHEAD:
        raise SealError("sealed value too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad or None)
    except InvalidTag:
        raise SealError("not authentic under this key") from None


class Sealer:
    """One key, ready for many blocks (the AESGCM context is built once)."""

    overhead = OVERHEAD

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256 needs a 32-byte key")
        self._aead = AESGCM(key)

    # Every fresh multi-MiB buffer costs ~10 ms of page faults on this platform, so
    # sealing writes into ONE buffer and opening reads through a memoryview: measured on
    # 4 MiB blocks, ~2 GB/s each, against ~0.4 GB/s when concatenating or slicing.
    def seal(self, plaintext: bytes) -> bytearray:
        nonce = os.urandom(NONCE_BYTES)
        out = bytearray(NONCE_BYTES + len(plaintext) + TAG_BYTES)
        out[:NONCE_BYTES] = nonce
        self._aead.encrypt_into(nonce, plaintext, None, memoryview(out)[NONCE_BYTES:])
        return out

    def unseal(self, sealed: bytes) -> bytes:
        if len(sealed) < OVERHEAD:
            raise SealError("sealed value too short")
        view = memoryview(sealed)
        try:
            return self._aead.decrypt(bytes(view[:NONCE_BYTES]), view[NONCE_BYTES:], None)
        except InvalidTag:
            raise SealError("not authentic under this key") from None
