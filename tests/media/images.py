"""Media files written by the tests themselves: PNG (zlib only) and WAV (wave), and a
PNG reader for checking a browser's screenshot pixel by pixel."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from collections.abc import Callable

Pixel = tuple[int, int, int]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def make_png(width: int, height: int, color: Callable[[int, int], Pixel]) -> bytes:
    """An 8-bit RGB PNG whose pixel (x, y) is ``color(x, y)``."""
    rows = b"".join(b"\x00" + b"".join(bytes(color(x, y)) for x in range(width))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(data: bytes) -> tuple[int, int, Callable[[int, int], Pixel]]:
    """(width, height, pixel(x, y) -> RGB) of a non-interlaced 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (0, a, prev[i], (a + prev[i]) // 2, _paeth(a, prev[i], c))[kind]
                       ) & 0xFF
        rows.append(line)
        prev = line

    def pixel(x: int, y: int) -> Pixel:
        row = rows[y]
        return row[x * bpp], row[x * bpp + 1], row[x * bpp + 2]

    return width, height, pixel


def make_wav(seconds: float, rate: int = 44100) -> bytes:
    """A stereo 16-bit PCM WAV: a 440 Hz tone whose loudness rises over time."""
    frames = int(seconds * rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (int(12000 * (i / frames) * math.sin(2 * math.pi * 440 * i / rate))
                   for i in range(frames))
        w.writeframes(b"".join(struct.pack("<hh", s, s) for s in samples))
    return out.getvalue()
