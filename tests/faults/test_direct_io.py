"""Shard bytes flushed with O_DIRECT survive a SIGKILL in the middle of a flush.

A node's RocksDB writes its blob and table files with direct I/O (cluster/dboptions.py),
so nothing of a flush sits in the page cache. A real store process writes 1 MiB shards
one after another, printing each one once ``put_shard`` has acknowledged it; it is
SIGKILLed the moment a memtable flush has begun writing a new blob file. Reopened, the
store must hold every acknowledged shard intact (BLAKE3-checked), and any shard it holds
beyond those must be intact too: nothing torn becomes readable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster.nodeauth import content_hash
from cluster.store import NodeStore
from tests.harness import rocksdb_options

SIZE = 1 << 20
FLUSHED_BEFORE_KILL = 1  # blob files complete before the one the kill interrupts

CHILD = """
import asyncio, sys
from cluster.nodeauth import content_hash
from cluster.store import NodeStore

async def main(path):
    store = NodeStore(path)
    await store.start()
    for i in range(100_000):
        data = i.to_bytes(4, "big") * ({size} // 4)
        await store.put_shard(f"s{{i}}.0", data, content_hash(data))
        print(i, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def shard(i: int) -> bytes:
    return i.to_bytes(4, "big") * (SIZE // 4)


def test_sigkill_mid_flush_keeps_every_acknowledged_shard(tmp_path: Path) -> None:
    db = tmp_path / "db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(size=SIZE), str(db)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 120
        seen: set[str] = set()
        while len(seen) <= FLUSHED_BEFORE_KILL:  # kill as the next flush starts a file
            assert time.monotonic() < deadline and child.poll() is None, "no flush seen"
            seen |= {p.name for p in db.glob("*.blob")}
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    acked = [int(line) for line in out.split()]
    assert len(acked) > 64  # more than one memtable's worth was acknowledged
    assert "use_direct_io_for_flush_and_compaction=true" in rocksdb_options(db)
    asyncio.run(_reopen_and_check(db, acked[-1]))


async def _reopen_and_check(db: Path, last_acked: int) -> None:
    store = NodeStore(db)
    await store.start()
    try:
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
