"""A streaming multipart/form-data reader for browser form uploads (POST Object).

S3 reads the form fields that precede the ``file`` field into memory (bounded by
``MAX_FIELDS_BYTES``, as S3 bounds them) and streams the file itself, so an upload of
any size needs bounded memory. Fields after the file are ignored, as S3 ignores them.
The file ends at the next ``CRLF--boundary``; a body that ends before it is IncompleteBody.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.errors import S3Error

MAX_FIELDS_BYTES = 20 * 1024  # S3: the fields before the file may take at most 20 KB
MAX_HEADER_BYTES = 8 * 1024


def boundary_of(content_type: str) -> bytes:
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                  "multipart/form-data.")


def _malformed() -> S3Error:
    return S3Error("MalformedPOSTRequest", "The body of your POST request is not well-formed "
                   "multipart/form-data.")


def _disposition(headers: bytes) -> tuple[str, str | None, str]:
    """(field name, filename or None, content type) from a part's header block."""
    name, filename, ctype = None, None, ""
    for line in headers.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-type":
            ctype = value.strip()
        if key.strip().lower() != "content-disposition":
            continue
        for param in value.split(";")[1:]:
            pname, _, pvalue = param.strip().partition("=")
            pvalue = pvalue.strip()
            if len(pvalue) >= 2 and pvalue[0] == pvalue[-1] == '"':
                pvalue = pvalue[1:-1]
            if pname.lower() == "name":
                name = pvalue
            elif pname.lower() == "filename":
                filename = pvalue
    if name is None:
        raise _malformed()
    return name, filename, ctype


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)  # lower-case names -> values
    names: dict[str, str] = field(default_factory=dict)  # lower-case -> name as sent
    filename: str | None = None
    file_type: str = ""


class FormReader:
    """``read_fields`` first, then ``file_chunks`` streams the file part."""

    def __init__(self, stream: AsyncIterator[bytes], boundary: bytes) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._delim = b"\r\n--" + boundary
        self._first = b"--" + boundary
        self._eof = False

    async def _more(self) -> bool:
        if self._eof:
            return False
        chunk = await anext(self._stream, None)
        if chunk is None:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def _until(self, marker: bytes, limit: int) -> bytes:
        while True:
            at = self._buf.find(marker)
            if at >= 0:
                out = bytes(self._buf[:at])
                del self._buf[: at + len(marker)]
                return out
            if len(self._buf) > limit:
                raise S3Error("MaxPostPreDataLengthExceededError", "Your POST request fields "
                              "preceding the upload file were too large.")
            if not await self._more():
                raise _malformed()

    async def read_fields(self) -> Form:
        """Every field up to the file (``Form.filename`` None when there is no file)."""
        form = Form()
        total = 0
        await self._until(self._first, MAX_FIELDS_BYTES)
        while True:
            while len(self._buf) < 2 and await self._more():
                pass
            if self._buf[:2] == b"--":  # the closing delimiter: no file in this form
                return form
            await self._until(b"\r\n", 2)
            headers = await self._until(b"\r\n\r\n", MAX_HEADER_BYTES)
            name, filename, ctype = _disposition(headers)
            if name.lower() == "file" or filename is not None:
                form.filename, form.file_type = filename or "", ctype
                return form
            value = await self._until(self._delim, MAX_FIELDS_BYTES - total)
            total += len(value) + len(name)
            if total > MAX_FIELDS_BYTES:
                raise S3Error("MaxPostPreDataLengthExceededError", "Your POST request fields "
                              "preceding the upload file were too large.")
            form.fields[name.lower()] = value.decode("utf-8", "replace")
            form.names[name.lower()] = name

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, up to (not including) the delimiter that ends it."""
        keep = len(self._delim) - 1
        while True:
            at = self._buf.find(self._delim)
            if at >= 0:
                if at:
                    yield bytes(self._buf[:at])
                self._buf.clear()
                return
            if len(self._buf) > keep:
                out = bytes(self._buf[:-keep])
                del self._buf[:-keep]
                yield out
            if not await self._more():
                raise S3Error("IncompleteBody", "The request body ended before the file did")
