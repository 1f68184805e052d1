"""How a node's RocksDB is tuned: blob files for shards, direct I/O, one block cache.

Direct I/O. Flushes and compactions write, and reads read, with ``O_DIRECT``: shard bytes
do not pass through the kernel's page cache. Written through it, every shard byte was
copied into page-cache pages that stayed cached until memory ran out; on a VM whose
memory the host backs on first touch (this project's CI and benchmark machines), each
new page cost ~2.5 ms per MiB of kernel time, and a node spent 3.8 s of system CPU on
512 MiB of 64 MiB PUTs instead of 0.7 s (64 MiB PUT at c2: 126 MiB/s buffered, 191-196
direct). In a container the page cache also counts against the
memory limit. Ceph's BlueStore does the same. The WAL stays buffered: its files are
deleted after each flush, so its pages are reused, and it is synced before every
acknowledgement either way. Reads of SST blocks (records, hashes) then come from the
block cache below, not from the page cache.

The WAL's size is capped (``MAX_WAL_BYTES``). One WAL serves every column family and a
WAL file is deleted only once every family with writes in it has flushed; the small
families (records, hashes) fill their memtables slowly, so by RocksDB's default cap (4×
the memtable budget of all five families, 2.5 GiB) a node kept up to 40 WAL files of
shards that were long flushed to blob files. Measured: 21 WAL files, 1.3 GiB per node,
all in the page cache, after 5 GiB of 64 MiB PUTs to six nodes; the page cache grew into
untouched memory again (node system CPU per 512 MiB PUT 0.6 s fresh, 1.5 s then), disk
use was twice the data, and a crashed node would replay all of it. Past the cap RocksDB
flushes the families holding the oldest WAL file, so it can go.

Filesystems without ``O_DIRECT`` (some FUSE and network filesystems) get buffered I/O
and a warning: ``direct_io_works`` probes the DB's directory before RocksDB opens it,
because RocksDB only finds out at its first flush, and then stops taking writes.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
from pathlib import Path

import rocksdict

log = logging.getLogger(__name__)

BLOCK_CACHE_BYTES = 64 << 20  # SST blocks of every column family, one LRU per node
MAX_WAL_BYTES = 256 << 20  # four shard memtables' worth
_ALIGN = 4096  # O_DIRECT needs offset, length and buffer aligned to the logical block


def direct_io_works(directory: Path) -> bool:
    """Whether files in ``directory`` can be written with O_DIRECT."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    probe = directory / ".direct-io-probe"
    buf = mmap.mmap(-1, _ALIGN)  # page-aligned, as O_DIRECT wants
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o600)
        try:
            os.write(fd, buf)
        finally:
            os.close(fd)
        return True
    except OSError:
        return False
    finally:
        buf.close()
        with contextlib.suppress(OSError):
            probe.unlink()


class DBOptions:
    """Options for the DB and each column family. Keep the instance as long as the DB:
    RocksDB uses the block cache it holds."""

    def __init__(self, path: Path) -> None:
        self.cache = rocksdict.Cache(BLOCK_CACHE_BYTES)
        self.db = self._column_family()
        self.db.create_if_missing(True)
        self.db.create_missing_column_families(True)
        self.db.set_max_total_wal_size(MAX_WAL_BYTES)
        if direct_io_works(path):
            self.db.set_use_direct_io_for_flush_and_compaction(True)
            self.db.set_use_direct_reads(True)
        else:
            log.warning("%s: no O_DIRECT on this filesystem; shards go through the page "
                        "cache", path)

    def _column_family(self) -> rocksdict.Options:
        opts = rocksdict.Options(raw_mode=True)
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(self.cache)
        opts.set_block_based_table_factory(table)
        return opts

    def shards(self) -> rocksdict.Options:
        """Shard values live in blob files, outside the LSM tree, so compaction does not
        rewrite them."""
        opts = self._column_family()
        opts.set_enable_blob_files(True)
        opts.set_min_blob_size(64 * 1024)
        opts.set_blob_file_size(256 << 20)
        # Off: with it on, every compaction (one per four memtable flushes) copied the live
        # shards of the oldest quarter of the blob files, garbage or not -- measured on a
        # node holding 5.7 GB, 1.29 GB rewritten per 256 MB written, 4.4-4.9 s of CPU each.
        opts.set_enable_blob_gc(False)
        return opts

    def column_families(self) -> dict[str, rocksdict.Options]:
        return {"shards": self.shards(), **{name: self._column_family() for name in (
            "shard_hashes", "meta", "meta_clocks", "shard_chunks")}}
