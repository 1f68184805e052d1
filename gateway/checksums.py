"""Upload body verification: the ETag MD5, Content-MD5, the signed SHA-256 and x-amz-checksum-*.

``requested_checksum`` reads which flexible checksum a request declares (in a header or as
a trailer) and rejects contradictory or malformed declarations before any byte is stored.
``BodyVerifier`` computes everything in one pass over the body; ``finish`` raises the
error S3 would send. Nothing here is shared between requests, so a verifier may be fed
from a worker thread as long as only one thread feeds it at a time (hashlib releases the
GIL on large buffers, so MD5 and SHA run in parallel with the event loop).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

from awscrt import checksums as crt
from zlib_ng import zlib_ng

from gateway.errors import S3Error

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32}
# CRC32 from zlib-ng: awscrt's runs its portable table code on this CPU (0.43 ms/MiB;
# zlib-ng's PCLMUL path 0.08), while its CRC32C and CRC64NVME use the hardware.
_CRCS = {"CRC32": zlib_ng.crc32, "CRC32C": crt.crc32c, "CRC64NVME": crt.crc64nvme}
# x-amz-checksum-* headers that carry no checksum value.
_NOT_VALUES = {"x-amz-checksum-type", "x-amz-checksum-algorithm", "x-amz-checksum-mode"}
_PREFIX = "x-amz-checksum-"
_MULTIPLE = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."


class Checksum:
    """A streaming checksum; ``b64`` is the base64 of the big-endian digest, as S3 sends it."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm.upper()
        if self.algorithm not in ALGORITHMS:
            raise S3Error("InvalidRequest", _unsupported_message())
        self._crc = _CRCS.get(self.algorithm)
        self._value = 0
        self._hash = None if self._crc else hashlib.new(self.algorithm.lower())

    def update(self, data: bytes | memoryview) -> None:
        if self._crc is not None:
            self._value = self._crc(data, self._value)
        else:
            self._hash.update(data)  # type: ignore[union-attr]

    def digest(self) -> bytes:
        if self._crc is not None:
            return self._value.to_bytes(DIGEST_SIZES[self.algorithm], "big")
        return self._hash.digest()  # type: ignore[union-attr]

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def _unsupported_message() -> str:
    return ("Checksum algorithm provided is unsupported. Please try again with any of the "
            f"valid types: [{', '.join(ALGORITHMS)}]")


def _invalid_value(algorithm: str) -> S3Error:
    return S3Error("InvalidRequest", f"Value for x-amz-checksum-{algorithm.lower()} header is "
                   "invalid.")


def _check_value(algorithm: str, value: str) -> str:
    """The value itself when it is base64 of a digest of the algorithm's size."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid_value(algorithm) from None
    if len(raw) != DIGEST_SIZES[algorithm]:
        raise _invalid_value(algorithm)
    return value


def requested_checksum(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(algorithm, expected base64 or None when it comes in a trailer), or (None, None).

    Reads x-amz-checksum-<algorithm>, x-amz-trailer and x-amz-sdk-checksum-algorithm; every
    contradiction S3 refuses raises ``S3Error("InvalidRequest", ...)``.
    """
    in_headers: list[tuple[str, str]] = []
    trailer_names: list[str] = []
    sdk: str | None = None
    for name, value in headers.items():
        name = name.lower()
        if name.startswith(_PREFIX) and name not in _NOT_VALUES:
            algorithm = name[len(_PREFIX):].upper()
            if algorithm not in ALGORITHMS:
                raise S3Error("InvalidRequest", _unsupported_message())
            in_headers.append((algorithm, value.strip()))
        elif name == "x-amz-trailer":
            trailer_names += [t.strip().lower() for t in value.split(",") if t.strip()]
        elif name == "x-amz-sdk-checksum-algorithm":
            sdk = value.strip().upper()

    in_trailer: list[str] = []
    for name in trailer_names:
        algorithm = name[len(_PREFIX):].upper() if name.startswith(_PREFIX) else ""
        if algorithm not in ALGORITHMS:
            raise S3Error("InvalidRequest",
                          "The value specified in the x-amz-trailer header is not supported")
        in_trailer.append(algorithm)

    if len(in_headers) + len(in_trailer) > 1:
        raise S3Error("InvalidRequest", _MULTIPLE)
    if sdk is not None and sdk not in ALGORITHMS:
        raise S3Error("InvalidRequest", _unsupported_message())
    if in_headers:
        algorithm, value = in_headers[0]
        expected: str | None = _check_value(algorithm, value)
    elif in_trailer:
        algorithm, expected = in_trailer[0], None
    else:
        if sdk is not None:
            raise S3Error("InvalidRequest", "x-amz-sdk-checksum-algorithm specified, but no "
                          "corresponding x-amz-checksum-* or x-amz-trailer headers were found.")
        return None, None
    if sdk is not None and sdk != algorithm:
        raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is "
                      "invalid.")
    return algorithm, expected


class BodyVerifier:
    """Everything computed over an upload body in one pass: MD5 (the ETag), the declared
    SHA-256 (signed payloads), Content-MD5, and the x-amz-checksum-*."""

    def __init__(self, *, content_md5: str | None, payload_sha256: str | None,
                 checksum_algorithm: str | None, checksum_expected: str | None,
                 checksum_from_trailer: bool = True) -> None:
        """``checksum_expected`` None means the value comes in a trailer, or, with
        ``checksum_from_trailer=False``, that the checksum is only computed, not checked."""
        self._content_md5: bytes | None = None
        if content_md5 is not None:
            try:
                self._content_md5 = base64.b64decode(content_md5.strip(), validate=True)
            except (binascii.Error, ValueError):
                self._content_md5 = b""
            if len(self._content_md5) != 16:
                raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._payload_sha256 = payload_sha256.lower() if payload_sha256 else None
        self._sha256 = hashlib.sha256() if self._payload_sha256 else None
        self._algorithm = checksum_algorithm.upper() if checksum_algorithm else None
        self._checksum: Checksum | None = None
        if self._algorithm is not None and not (self._algorithm == "SHA256" and self._sha256):
            self._checksum = Checksum(self._algorithm)
        # else a SHA256 checksum is read off the signed payload's hash: one pass, not two.
        self._expected = checksum_expected
        self._from_trailer = checksum_from_trailer
        if self._algorithm is not None and checksum_expected is not None:
            _check_value(self._algorithm, checksum_expected.strip())
        self._result: tuple[str, str] | None = None
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self._md5.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._checksum is not None:
            self._checksum.update(data)

    def finish(self, trailers: Mapping[str, str] | None = None) -> None:
        """Check every declared digest against the body; raise the S3 error for the first
        that differs. ``trailers`` are the decoded aws-chunked trailers (lower-case names)."""
        if self._sha256 is not None and self._sha256.hexdigest() != self._payload_sha256:
            raise S3Error("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                          "header does not match what was computed.")
        if self._content_md5 is not None and self._md5.digest() != self._content_md5:
            raise S3Error("BadDigest",
                          "The Content-MD5 you specified did not match what we received.")
        algorithm = self._algorithm
        if algorithm is None:
            return
        expected = self._expected
        if expected is None and self._from_trailer:
            expected = (trailers or {}).get(_PREFIX + algorithm.lower())
            if expected is None:
                raise S3Error("InvalidRequest", f"The x-amz-checksum-{algorithm.lower()} "
                              "trailer declared by x-amz-trailer was not sent.")
            _check_value(algorithm, expected.strip())
        if self._checksum is not None:
            actual = self._checksum.b64()
        else:
            assert self._sha256 is not None
            actual = base64.b64encode(self._sha256.digest()).decode("ascii")
        if expected is not None and actual != expected.strip():
            raise S3Error("BadDigest",
                          f"The {algorithm} you specified did not match the calculated checksum.")
        self._result = (algorithm, actual)

    @property
    def etag(self) -> str:
        """Hex MD5 of the body so far (no quotes)."""
        return self._md5.hexdigest()

    @property
    def checksum(self) -> tuple[str, str] | None:
        """(algorithm, base64) once ``finish`` verified it; None before or when none declared."""
        return self._result
