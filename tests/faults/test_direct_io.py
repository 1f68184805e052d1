"""Shard bytes flushed with O_DIRECT survive a SIGKILL in the middle of a flush.

A node's RocksDB writes its blob and table files with direct I/O (cluster/dboptions.py),
so nothing of a flush sits in the page cache. A real store process writes 1 MiB shards
one after another, printing each one once ``put_shard`` has acknowledged it; it is
SIGKILLed the moment a memtable flush has begun writing a new blob file. Reopened, the
store must hold every acknowledged shard intact (BLAKE3-checked), and any shard it holds
beyond those must be intact too: nothing torn becomes readable.

The WAL cap (``dboptions.MAX_WAL_BYTES``) makes RocksDB flush the small families (records,
hashes) long before their memtables fill, so that old WAL files can go: the second test
writes one record first, then shards past a small cap, and kills the process the moment
that forced flush begins writing a table file. The record must survive it too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cluster.nodeauth import content_hash
from cluster.store import NodeStore
from tests.harness import rocksdb_options

SIZE = 1 << 20
FLUSHED_BEFORE_KILL = 1  # blob files complete before the one the kill interrupts

CHILD = """
import asyncio, sys
from cluster import dboptions
from cluster.nodeauth import content_hash
from cluster.store import NodeStore

async def main(path, wal_cap):
    if wal_cap:
        dboptions.MAX_WAL_BYTES = wal_cap
    store = NodeStore(path)
    await store.start()
    await store.meta_put([("obj/kept", {{"hlc": [1, 0, "g"]}})])
    for i in range(100_000):
        data = i.to_bytes(4, "big") * ({size} // 4)
        await store.put_shard(f"s{{i}}.0", data, content_hash(data))
        print(i, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def shard(i: int) -> bytes:
    return i.to_bytes(4, "big") * (SIZE // 4)


def test_sigkill_mid_flush_keeps_every_acknowledged_shard(tmp_path: Path) -> None:
    db = tmp_path / "db"
    # Kill as the next flush starts a blob file.
    acked = _write_until(db, 0, lambda: len(list(db.glob("*.blob"))) > FLUSHED_BEFORE_KILL)
    assert len(acked) > 64  # more than one memtable's worth was acknowledged
    assert "use_direct_io_for_flush_and_compaction=true" in rocksdb_options(db)
    asyncio.run(_reopen_and_check(db, acked[-1]))


def test_sigkill_mid_forced_flush_of_records_keeps_them(tmp_path: Path) -> None:
    db = tmp_path / "db"
    # The records family holds one record: only the WAL cap flushes it to a table file.
    acked = _write_until(db, 8 << 20, lambda: any(db.glob("*.sst")))
    assert 8 <= len(acked) < 64, len(acked)  # past the cap, before a memtable filled
    assert f"max_total_wal_size={8 << 20}" in rocksdb_options(db)
    asyncio.run(_reopen_and_check(db, acked[-1]))


def _write_until(db: Path, wal_cap: int, moment: Callable[[], bool]) -> list[int]:
    """Run the writing child until ``moment()``, SIGKILL it; the shards it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(size=SIZE), str(db), str(wal_cap)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 120
        while not moment():
            assert time.monotonic() < deadline and child.poll() is None, "moment not seen"
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return [int(line) for line in out.split()]


async def _reopen_and_check(db: Path, last_acked: int) -> None:
    store = NodeStore(db)
    await store.start()
    try:
        assert await store.meta_get(["obj/kept"]) == [{"hlc": [1, 0, "g"]}]
        for i in range(last_acked + 1):
            assert await store.get_shard(f"s{i}.0") == shard(i), i
            assert await store.shard_hash(f"s{i}.0") == content_hash(shard(i))
        held = await store.shard_ids("", 1_000_000)
        for key in held:  # a write in flight may have landed; then it is whole
            i = int(key[1:-2])
            assert await store.get_shard(key) == shard(i), key
        assert len(held) >= last_acked + 1
    finally:
        await store.close()
