"""The framed form of ``/meta/get`` answers: stored records as they are, no JSON around.

A record is sent as a 4-byte big-endian signed length and then its stored JSON bytes;
length -1 means absent. The gateway can then compare two owners' copies as bytes and
decode only one (a 16-block record takes ~30 µs to decode, and most reads find the
owners agreeing), and the node never decodes a record to answer.
"""

from __future__ import annotations

import struct

MEDIA_TYPE = "application/x-shoal-records"
# A framed ``/meta/scan`` answer: lines alternating a JSON key and a stored record (its
# encoder is the node's scan handler, its reader ``nodeclient.ScanLines``).
SCAN_MEDIA_TYPE = "application/x-shoal-scan-lines"
_LEN = struct.Struct(">i")


def encode(raws: list[bytes | None]) -> bytes:
    out = bytearray()
    for raw in raws:
        if raw is None:
            out += _LEN.pack(-1)
        else:
            out += _LEN.pack(len(raw))
            out += raw
    return bytes(out)


def decode(body: bytes, count: int) -> list[bytes | None]:
    """``count`` records; ValueError if the body does not hold exactly that many."""
    view, pos, out = memoryview(body), 0, []
    for _ in range(count):
        if pos + _LEN.size > len(view):
            raise ValueError("framed records: truncated length")
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if size < 0:
            out.append(None)
            continue
        if pos + size > len(view):
            raise ValueError("framed records: truncated record")
        out.append(bytes(view[pos:pos + size]))
        pos += size
    if pos != len(view):
        raise ValueError("framed records: trailing bytes")
    return out
