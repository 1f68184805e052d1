"""Streaming decoder for ``Content-Encoding: aws-chunked`` request bodies.

Wire format (the three streaming payload modes of ``sigv4``)::

    <hex-size>[;chunk-signature=<sig>]\\r\\n<size bytes>\\r\\n      ... repeated ...
    0[;chunk-signature=<sig>]\\r\\n
    \\r\\n                                              (no trailers), or
    <name>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n] \\r\\n   (trailers)

Guarantees:

* In the signed modes every chunk's signature is checked before any of its bytes are
  yielded (so memory holds at most one chunk, at most ``MAX_SIGNED_CHUNK`` bytes);
  each signature chains from the previous one, starting at the request's seed signature,
  so chunks can be neither reordered, dropped nor replayed. In ``streaming-unsigned-trailer``
  bytes are yielded as they arrive.
* A stream that ends early, breaks the framing, or decodes to a length other than
  ``x-amz-decoded-content-length`` raises before ``decode`` finishes: a caller that commits
  only after the generator is exhausted never stores a truncated body.
* ``trailers`` is filled only once the whole body, trailer signature included, verified.

Leniencies, because real clients differ: the CRLF after the final chunk may be missing at
end of stream, and an empty line between the final chunk and the trailers is skipped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator

from gateway.errors import S3Error
from gateway.sigv4 import EMPTY_SHA256, AuthResult, hmac_hex, signatures_equal

MIN_SIGNED_CHUNK = 8192  # S3: every chunk but the last carries at least 8 KiB
MAX_SIGNED_CHUNK = 16 * 1024 * 1024  # a signed chunk is held whole until it verifies
MAX_LINE = 4096  # longest chunk header or trailer line
MAX_TRAILER_BYTES = 16 * 1024
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_STREAMING = ("streaming-signed", "streaming-signed-trailer", "streaming-unsigned-trailer")


def _incomplete(why: str) -> S3Error:
    return S3Error("IncompleteBody", f"The request body is not valid aws-chunked: {why}")


def _bad_signature(what: str) -> S3Error:
    return S3Error("SignatureDoesNotMatch", f"The {what} signature we calculated does not "
                   "match the signature you provided.")


class _Reader:
    """A byte buffer over an async source that hands out lines and exact-size reads."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source.__aiter__()
        self._buf = bytearray()
        self.eof = False

    async def _fill(self) -> bool:
        if self.eof:
            return False
        async for piece in self._source:
            if piece:
                self._buf += piece
                return True
        self.eof = True
        return False

    async def at_end(self) -> bool:
        """True when the source is exhausted and nothing is buffered."""
        return not self._buf and not await self._fill()

    async def line(self, allow_eof_tail: bool = False) -> bytes | None:
        """The next CRLF-terminated line without its CRLF; None at a clean end of stream.
        With ``allow_eof_tail``, unterminated bytes at end of stream count as a last line."""
        start = 0
        while True:
            found = self._buf.find(b"\r\n", start)
            if found >= 0:
                line = bytes(self._buf[:found])
                del self._buf[:found + 2]
                return line
            if len(self._buf) > MAX_LINE:
                raise _incomplete("a chunk header or trailer line is too long")
            start = max(0, len(self._buf) - 1)
            if not await self._fill():
                if not self._buf:
                    return None
                if allow_eof_tail:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                raise _incomplete("the stream ended inside a chunk header")

    async def exactly(self, size: int) -> AsyncIterator[bytes]:
        """Yield exactly ``size`` bytes in the pieces they arrive in."""
        remaining = size
        while remaining:
            if self._buf:
                take = min(remaining, len(self._buf))
                piece = bytes(self._buf[:take])
                del self._buf[:take]
            else:
                try:
                    piece = await anext(self._source)
                except StopAsyncIteration:
                    self.eof = True
                    raise _incomplete("the stream ended inside a chunk") from None
                if len(piece) > remaining:
                    self._buf += piece[remaining:]
                    piece = piece[:remaining]
                piece = bytes(piece)
            remaining -= len(piece)
            if piece:
                yield piece


class ChunkedDecoder:
    """Decodes an aws-chunked body from an async byte stream, verifying chunk signatures
    (streaming-signed*) and collecting trailers (*-trailer modes)."""

    def __init__(self, auth: AuthResult, decoded_length: int | None) -> None:
        if auth.payload_mode not in _STREAMING:
            raise ValueError(f"payload mode {auth.payload_mode!r} is not aws-chunked")
        self._auth = auth
        self._signed = auth.payload_mode != "streaming-unsigned-trailer"
        self._trailing = auth.payload_mode.endswith("trailer")
        self._decoded_length = decoded_length
        self._previous = auth.seed_signature
        self.trailers: dict[str, str] = {}

    async def decode(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Yield the payload bytes; raise ``S3Error`` on any framing, size or signature fault."""
        reader = _Reader(source)
        total = 0
        last_size: int | None = None
        while True:
            line = await reader.line()
            if line is None:
                raise _incomplete("the stream ended before the final chunk")
            size, signature = self._chunk_header(line)
            if self._signed and last_size is not None and last_size < MIN_SIGNED_CHUNK \
                    and size > 0:
                raise S3Error("InvalidChunkSizeError", "Only the last chunk is allowed to "
                              f"have a size less than {MIN_SIGNED_CHUNK} bytes")
            total += size
            if self._decoded_length is not None and total > self._decoded_length:
                raise S3Error("IncompleteBody", "The body is longer than the "
                              "x-amz-decoded-content-length header says")
            if size == 0:
                self._check_chunk(signature, EMPTY_SHA256)
                break
            if self._signed:
                digest = hashlib.sha256()
                held = []
                async for piece in reader.exactly(size):
                    digest.update(piece)  # hashed piece by piece: no long stall of the loop
                    held.append(piece)
                self._check_chunk(signature, digest.hexdigest())
                for piece in held:
                    yield piece
            else:
                async for piece in reader.exactly(size):
                    yield piece
            if await reader.line() != b"":
                raise _incomplete("a chunk's data is not followed by CRLF")
            last_size = size
        if self._decoded_length is not None and total != self._decoded_length:
            raise S3Error("IncompleteBody", "You did not provide the number of bytes specified "
                          "by the x-amz-decoded-content-length HTTP header")
        if self._trailing:
            await self._read_trailers(reader)
        elif await reader.line(allow_eof_tail=True) not in (b"", None):
            raise _incomplete("the final chunk is not followed by CRLF")
        if not await reader.at_end():
            raise _incomplete("data follows the final chunk")

    def _chunk_header(self, line: bytes) -> tuple[int, str | None]:
        size_field, _, extensions = line.partition(b";")
        size_field = size_field.strip()
        if not _SIZE.fullmatch(size_field):
            raise S3Error("InvalidChunkSizeError", "A chunk size is not a hexadecimal number")
        size = int(size_field, 16)
        if self._signed and size > MAX_SIGNED_CHUNK:
            raise S3Error("InvalidChunkSizeError",
                          f"A signed chunk may hold at most {MAX_SIGNED_CHUNK} bytes")
        signature = None
        for extension in extensions.split(b";"):
            name, _, value = extension.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("latin-1")
        return size, signature

    def _check_chunk(self, provided: str | None, data_sha256: str) -> None:
        if not self._signed:
            return
        auth = self._auth
        string_to_sign = (f"AWS4-HMAC-SHA256-PAYLOAD\n{auth.amz_date}\n{auth.scope}\n"
                          f"{self._previous}\n{EMPTY_SHA256}\n{data_sha256}")
        expected = hmac_hex(self._signing_key(), string_to_sign)
        if provided is None or not signatures_equal(expected, provided):
            raise _bad_signature("chunk")
        self._previous = expected

    def _signing_key(self) -> bytes:
        if self._auth.signing_key is None:
            raise ValueError("a signed aws-chunked body needs the request's signing key")
        return self._auth.signing_key

    async def _read_trailers(self, reader: _Reader) -> None:
        trailers: list[tuple[str, str]] = []
        signature: str | None = None
        size = 0
        while True:
            line = await reader.line(allow_eof_tail=True)
            if line is None:
                break
            size += len(line) + 2
            if size > MAX_TRAILER_BYTES:
                raise _incomplete("the trailers are too long")
            if line.strip() == b"":
                if trailers or signature is not None or await reader.at_end():
                    break
                continue  # the blank line some clients put between the final chunk and trailers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip():
                raise _incomplete("a trailer line is not 'name:value'")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                signature = value
            else:
                trailers.append((name, value))
        if self._signed and (trailers or signature is not None):
            self._check_trailer(trailers, signature)
        self.trailers = dict(trailers)

    def _check_trailer(self, trailers: list[tuple[str, str]], provided: str | None) -> None:
        """AWS4-HMAC-SHA256-TRAILER over sha256 of "name:value\\n" per trailer. Clients list
        trailers sorted by name; the order as sent is also accepted."""
        if provided is None:
            raise _bad_signature("trailer")
        auth = self._auth
        for ordering in (sorted(trailers), trailers):
            canonical = "".join(f"{name}:{value}\n" for name, value in ordering)
            string_to_sign = (f"AWS4-HMAC-SHA256-TRAILER\n{auth.amz_date}\n{auth.scope}\n"
                              f"{self._previous}\n"
                              f"{hashlib.sha256(canonical.encode('latin-1')).hexdigest()}")
            if signatures_equal(hmac_hex(self._signing_key(), string_to_sign), provided):
                return
        raise _bad_signature("trailer")
