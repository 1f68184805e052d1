"""An upload body as the data path sees it: decoded, measured and verified.

The raw ASGI stream may be aws-chunked (signed chunks or an unsigned body with trailing
checksums); ``UploadBody.chunks`` yields plain payload bytes either way. Digests are
not computed here: the block writer feeds ``digest`` from its worker thread, so MD5 and
checksums run off the event loop together with erasure coding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from cluster.httpserve import body_reader
from gateway.checksums import BodyVerifier, requested_checksum
from gateway.chunked import ChunkedDecoder
from gateway.errors import S3Error
from gateway.sigv4 import AuthResult

MAX_OBJECT_SIZE = 5 * 1024**4  # S3's limit for one object
MAX_SINGLE_PUT = 5 * 1024**3
RAW_PIECE = 1 << 20  # bytes of body read in place at a time: what an upload holds unread


class UploadBody:
    def __init__(self, request: Request, auth: AuthResult | None,
                 compute_checksum: str | None = None) -> None:
        """``compute_checksum``: an algorithm to compute (not verify) when the request
        declares no x-amz-checksum-* (a part of an upload created with that algorithm)."""
        self.request = request
        headers = request.headers
        mode = auth.payload_mode if auth else "unsigned"
        self.decoder = ChunkedDecoder(auth, self._decoded_length()) if (
            auth and mode.startswith("streaming")) else None
        self.length = self._decoded_length() if self.decoder else self._content_length()
        if self.length is not None and self.length > MAX_SINGLE_PUT:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        algorithm, expected = requested_checksum(headers)
        computed = algorithm is None and compute_checksum is not None
        if computed:
            algorithm = compute_checksum
        self.verifier = BodyVerifier(
            content_md5=headers.get("content-md5"),
            payload_sha256=auth.payload_sha256 if auth and mode == "signed" else None,
            checksum_algorithm=algorithm,
            checksum_expected=expected,
            checksum_from_trailer=not computed,
        )

    def _content_length(self) -> int | None:
        value = self.request.headers.get("content-length")
        if value is None:
            if "chunked" not in self.request.headers.get("transfer-encoding", ""):
                raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.")
            return None
        return _parse_length(value)

    def _decoded_length(self) -> int | None:
        value = self.request.headers.get("x-amz-decoded-content-length")
        return None if value is None else _parse_length(value)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Payload bytes; raises IncompleteBody when the client sends fewer than promised."""
        raw = self._raw()
        source = self.decoder.decode(raw) if self.decoder else raw
        seen = 0
        async for chunk in source:
            seen += len(chunk)
            if self.length is not None and seen > self.length:
                raise S3Error("IncompleteBody", "More data than Content-Length was sent")
            yield chunk
        if self.length is not None and seen != self.length:
            raise S3Error(
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header",
            )

    async def _raw(self) -> AsyncIterator[bytes | bytearray]:
        read_into = body_reader(self.request.scope)
        try:
            if read_into is None:  # no length (chunked transfer), or another server
                async for chunk in self.request.stream():
                    if chunk:
                        yield chunk
                return
            while True:  # read in place (cluster/httpserve.py), a piece at a time
                piece = bytearray(RAW_PIECE)
                n = await read_into(memoryview(piece))
                if not n:
                    return
                if n < len(piece):
                    del piece[n:]
                yield piece
        except ClientDisconnect:
            raise S3Error("IncompleteBody", "The client closed the connection") from None

    def finish(self) -> None:
        """Check every digest the client declared; raise the S3 error for a mismatch."""
        self.verifier.finish(self.decoder.trailers if self.decoder else None)


def _parse_length(value: str) -> int:
    if not value.isdigit():
        raise S3Error("InvalidArgument", "Content-Length must be a non-negative integer")
    return int(value)
