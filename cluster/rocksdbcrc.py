"""Hardware CRC32C for RocksDB inside the rocksdict wheel.

The rocksdict wheels on PyPI are built for baseline x86-64, so RocksDB computes CRC32C
in software: ~1.05 ms per MiB on this machine, against 0.1 ms with the SSE4.2
instruction (every DB's LOG says "Fast CRC32 supported: Not supported on x86"). A shard
is checksummed twice on its way in, in the WAL record and in the blob file, which made
``rocksdb::crc32c::Extend`` 30 % of a storage node's CPU during large uploads; a synced
1 MiB write cost 3.9 ms of CPU, 2.0 ms with the patch below.

``accelerate()`` writes a 12-byte jump over the start of that one function, to
google-crc32c's ``crc32c_extend``: the same C signature ``(uint32 crc, const char *data,
size_t n) -> uint32``, the same polynomial and conventions, and hardware instructions
when the CPU has them. Every CRC32C in RocksDB goes through ``Extend`` (its lookup
tables are referenced nowhere else in the wheel), and the numbers are the same either
way, so files written before and after the patch are interchangeable.

It patches only when every check passes, and otherwise leaves RocksDB as it is:

* Linux on x86-64, and ``SHOAL_ROCKSDB_SOFT_CRC`` is not set (the way to turn it off);
* the wheel's symbol table names ``Extend`` (a function of at least 12 bytes), and the
  bytes loaded at that address are the bytes the file holds there;
* before: the function at that address gives google-crc32c's results on test vectors,
  so it is the function we think it is, called the way we think;
* after: it still does, through the jump (else the original bytes are put back).

Call it before the process opens a DB, while no RocksDB thread can be inside the
function being rewritten: importing cluster.store does.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import struct
from pathlib import Path

_EXTEND = b"_ZN7rocksdb6crc32c6ExtendEjPKcm"  # rocksdb::crc32c::Extend(unsigned, char const*, unsigned long)
_ANCHOR = b"PyInit_rocksdict"  # exported: where the loader put the wheel
_SHT_SYMTAB, _SHT_DYNSYM, _STT_FUNC = 2, 11, 2
_PROT_RX, _PROT_RWX = 5, 7
_CrcFn = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t)

_outcome: str | None = None  # once tried: "" when patched, else why not (per process)


def accelerate() -> bool:
    """Route RocksDB's CRC32C to hardware once per process; True when it is."""
    global _outcome
    if _outcome is None:
        try:
            _outcome = _patch() or ""
        except Exception as exc:  # a wheel or system we did not foresee: keep RocksDB's own
            _outcome = repr(exc)
    return _outcome == ""


def status() -> str:
    """What computes RocksDB's CRC32C in this process, in words (for the node's log)."""
    if accelerate():
        return "google-crc32c (hardware when the CPU has it)"
    return f"RocksDB's software code: {_outcome}"


def _patch() -> str | None:
    """Apply the jump; None on success, else why not."""
    if os.environ.get("SHOAL_ROCKSDB_SOFT_CRC"):
        return "SHOAL_ROCKSDB_SOFT_CRC is set"
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"not Linux x86-64 ({platform.system()} {platform.machine()})"
    import google_crc32c
    import rocksdict.rocksdict as wheel

    if google_crc32c.implementation != "c":
        return "google-crc32c has no C implementation here"
    target = _crc32c_extend_address(google_crc32c.__file__)
    if target is None:
        return "google-crc32c's library does not export crc32c_extend"
    addr = _function_address(Path(wheel.__file__))
    if isinstance(addr, str):
        return addr
    original = ctypes.string_at(addr, 12)
    if not _computes_crc32c(addr):
        return "rocksdb::crc32c::Extend does not compute CRC32C as expected"
    jump = b"\x48\xb8" + struct.pack("<Q", target) + b"\xff\xe0"  # movabs rax, target; jmp rax
    if not _write_code(addr, jump):
        return "the code page cannot be made writable"
    if not _computes_crc32c(addr):
        _write_code(addr, original)
        return "the patched function gave wrong checksums; restored"
    return None


def _crc32c_extend_address(package_file: str) -> int | None:
    libs = Path(package_file).parent.with_name("google_crc32c.libs")
    for lib in sorted(libs.glob("libcrc32c*")):
        fn = getattr(ctypes.CDLL(str(lib)), "crc32c_extend", None)
        if fn is not None:
            return ctypes.cast(fn, ctypes.c_void_p).value
    return None


def _function_address(path: Path) -> int | str:
    """Where ``Extend`` is loaded in this process, checked against the file's bytes."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as elf:
        found = _elf_symbols(elf, {_EXTEND, _ANCHOR})
        if _EXTEND not in found or _ANCHOR not in found:
            return "the wheel's symbol table does not name rocksdb::crc32c::Extend"
        value, size, file_offset = found[_EXTEND]
        if size < 16:
            return "rocksdb::crc32c::Extend is too short to patch"
        on_disk = elf[file_offset:file_offset + 16]
    anchor = ctypes.cast(getattr(ctypes.CDLL(str(path)), _ANCHOR.decode()), ctypes.c_void_p)
    addr = (anchor.value or 0) - found[_ANCHOR][0] + value
    if ctypes.string_at(addr, 16) != on_disk:
        return "the loaded code differs from the wheel's file (already patched?)"
    return addr


def _elf_symbols(elf: mmap.mmap, names: set[bytes]) -> dict[bytes, tuple[int, int, int]]:
    """{name: (address in the image, size, file offset)} of functions in a 64-bit
    little-endian ELF file's symbol tables."""
    if elf[:6] != b"\x7fELF\x02\x01":
        return {}
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    entsize, count = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * entsize) for i in range(count)]
    found: dict[bytes, tuple[int, int, int]] = {}
    for _, kind, _, _, offset, size, link, _, _, _ in sections:
        if kind not in (_SHT_SYMTAB, _SHT_DYNSYM):
            continue
        strings = sections[link]
        str_lo, str_hi = strings[4], strings[4] + strings[5]
        wanted = {}
        for name in names:  # find each name's string first: 20,000 symbols need not decode
            at = elf.find(b"\0" + name + b"\0", str_lo, str_hi)
            if at >= 0:
                wanted[at + 1 - str_lo] = name
        for st_name, info, _, shndx, value, sym_size in struct.iter_unpack(
                "<IBBHQQ", elf[offset:offset + size]):
            if st_name in wanted and info & 0xF == _STT_FUNC and 0 < shndx < count:
                section = sections[shndx]  # file offset = value - sh_addr + sh_offset
                found[wanted[st_name]] = (value, sym_size, value - section[3] + section[4])
    return found


def _computes_crc32c(addr: int) -> bool:
    import google_crc32c

    fn = _CrcFn(addr)
    for n, seed in ((0, 0), (1, 7), (13, 0xFFFFFFFF), (4099, 12345), (1 << 20, 0)):
        data = os.urandom(n)
        if fn(seed, data, n) != google_crc32c.extend(seed, data):
            return False
    return fn(0, b"123456789", 9) == 0xE3069283  # the CRC-32C check value


def _write_code(addr: int, code: bytes) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = addr & ~(mmap.PAGESIZE - 1)
    length = addr + len(code) - page
    if libc.mprotect(page, length, _PROT_RWX) != 0:
        return False
    ctypes.memmove(addr, code, len(code))
    libc.mprotect(page, length, _PROT_RX)
    return True
