"""The framed form of ``/meta/get`` answers: stored records as they are, no JSON around.

A record is sent as a 4-byte big-endian signed length and then its stored JSON bytes;
length -1 means absent. The gateway can then compare two owners' copies as bytes and
decode only one (a 16-block record takes ~30 µs to decode, and most reads find the
owners agreeing), and the node never decodes a record to answer.

Length -2 means absent from a partition this node has purged tombstones of, and is
followed by the partition's purge mark (8 bytes, big-endian ms): a reader discards
another owner's copy no newer than it, as the node itself would refuse that copy
(cluster/store.py). Only sent to a reader that asks for marks.
"""

from __future__ import annotations

import struct

MEDIA_TYPE = "application/x-shoal-records"
# A framed ``/meta/scan`` answer: lines alternating a JSON key and a stored record (its
# encoder is the node's scan handler, its reader ``nodeclient.ScanLines``).
SCAN_MEDIA_TYPE = "application/x-shoal-scan-lines"
_LEN = struct.Struct(">i")
_MARK = struct.Struct(">q")
ABSENT, ABSENT_MARKED = -1, -2


def encode(raws: list[bytes | None], marks: list[int] | None = None) -> bytes:
    """``marks`` (one per record, 0 for none) are sent for absent records only."""
    out = bytearray()
    for i, raw in enumerate(raws):
        if raw is not None:
            out += _LEN.pack(len(raw))
            out += raw
        elif marks and marks[i] > 0:
            out += _LEN.pack(ABSENT_MARKED)
            out += _MARK.pack(marks[i])
        else:
            out += _LEN.pack(ABSENT)
    return bytes(out)


def decode(body: bytes, count: int) -> tuple[list[bytes | None], list[int]]:
    """``count`` records and their purge marks (0 unless sent); ValueError if the body
    does not hold exactly that many."""
    view, pos, raws, marks = memoryview(body), 0, [], [0] * count
    for i in range(count):
        if pos + _LEN.size > len(view):
            raise ValueError("framed records: truncated length")
        (size,) = _LEN.unpack_from(view, pos)
        pos += _LEN.size
        if size == ABSENT_MARKED:
            if pos + _MARK.size > len(view):
                raise ValueError("framed records: truncated mark")
            (marks[i],) = _MARK.unpack_from(view, pos)
            pos += _MARK.size
        if size < 0:
            if size not in (ABSENT, ABSENT_MARKED):
                raise ValueError(f"framed records: bad length {size}")
            raws.append(None)
            continue
        if pos + size > len(view):
            raise ValueError("framed records: truncated record")
        raws.append(bytes(view[pos:pos + size]))
        pos += size
    if pos != len(view):
        raise ValueError("framed records: trailing bytes")
    return raws, marks
