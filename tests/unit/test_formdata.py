"""The streaming form reader: any chunking of the body gives the same fields and file."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.errors import S3Error
from gateway.formdata import MAX_FIELDS_BYTES, FormReader, boundary_of

BOUNDARY = b"----b0undary"


def body(fields: dict[str, str], data: bytes | None, after: bytes = b"") -> bytes:
    out = b""
    for name, value in fields.items():
        out += (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"" +
                name.encode() + b"\"\r\n\r\n" + value.encode() + b"\r\n")
    if data is not None:
        out += (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n" + data + b"\r\n")
    return out + after + b"--" + BOUNDARY + b"--\r\n"


def read(raw: bytes, cuts: list[int]) -> tuple[dict[str, str], str | None, bytes]:
    async def stream():
        last = 0
        for cut in sorted(set(cuts)) + [len(raw)]:
            if last < cut <= len(raw):
                yield raw[last:cut]
                last = cut

    async def go():
        reader = FormReader(stream(), BOUNDARY)
        form = await reader.read_fields()
        data = b""
        if form.filename is not None:
            data = b"".join([c async for c in reader.file_chunks()])
        return form.fields, form.filename, data

    return asyncio.run(go())


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 600), max_size=12),
       value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
def test_any_chunking_reads_the_same(data, cuts, value):
    # A file that itself contains most of the delimiter must not be cut short.
    data = data + b"\r\n--" + BOUNDARY[:-1] + data
    # ...but one that contains the whole delimiter is not a valid body (a client picks a
    # boundary absent from its data): nothing can read it, so it is not asked.
    assume(b"\r\n--" + BOUNDARY not in data)
    raw = body({"key": "k/${filename}", "Policy": value}, data)
    fields, filename, got = read(raw, cuts)
    assert fields == {"key": "k/${filename}", "policy": value}
    assert (filename, got) == ("a.txt", data)


def test_no_file_and_oversized_fields_and_truncation():
    assert read(body({"key": "k"}, None), [])[1] is None
    with pytest.raises(S3Error) as err:
        read(body({"key": "x" * (MAX_FIELDS_BYTES + 1)}, b"d"), [])
    assert err.value.code == "MaxPostPreDataLengthExceededError"
    with pytest.raises(S3Error) as err:
        read(body({"key": "k"}, b"data")[:-10], [])
    assert err.value.code == "IncompleteBody"
    assert boundary_of('multipart/form-data; boundary="abc"') == b"abc"
    with pytest.raises(S3Error):
        boundary_of("multipart/form-data")
