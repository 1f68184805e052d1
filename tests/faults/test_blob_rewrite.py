"""A storage node SIGKILLed while it rewrites its blob files loses no live shard.

Deleted shards stay in RocksDB's blob files until ``NodeStore.reclaim_blob_space`` copies
the live shards into new files and drops the old ones. A real node process is killed the
moment the first new blob file appears (mid-rewrite); its store, reopened, must read
every live shard intact (BLAKE3-checked), none of the deleted ones, and finish the
rewrite on the next try.
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

SHARDS = 300
SIZE = 1 << 20

CHILD = """
import asyncio, sys
from cluster.nodeauth import content_hash
from cluster.store import NodeStore

async def main(path):
    store = NodeStore(path)
    await store.start()
    for i in range({shards}):
        data = shard(i)
        await store.put_shard(f"b{{i}}.0", data, content_hash(data))
    await store.reclaim_blob_space(minimum=1 << 40)  # flush: the shards are in blob files
    await store.delete_shards([f"b{{i}}.0" for i in range({shards}) if i % 3])
    print("rewriting", flush=True)
    await store.reclaim_blob_space(ratio=0.25, minimum=1)
    print("done", flush=True)
    await store.close()

def shard(i):
    return i.to_bytes(4, "big") * ({size} // 4)

asyncio.run(main(sys.argv[1]))
"""


def shard(i: int) -> bytes:
    return i.to_bytes(4, "big") * (SIZE // 4)


def test_sigkill_mid_rewrite_keeps_every_live_shard(tmp_path: Path) -> None:
    db = tmp_path / "db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(shards=SHARDS, size=SIZE), str(db)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "rewriting"
        before = {p.name for p in db.glob("*.blob")}
        deadline = time.monotonic() + 60
        while not {p.name for p in db.glob("*.blob")} - before:
            assert time.monotonic() < deadline and child.poll() is None, "no rewrite seen"
            time.sleep(0.002)
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert "done" not in out  # killed mid-rewrite, not after it
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    live = {f"b{i}.0": shard(i) for i in range(SHARDS) if not i % 3}
    asyncio.run(_reopen_and_check(db, live))


async def _reopen_and_check(db: Path, live: dict[str, bytes]) -> None:
    store = NodeStore(db)
    await store.start()
    try:
        await _check(store, live)
        done = await store.reclaim_blob_space(ratio=0.25, minimum=1)
        assert done["rewritten"]  # the killed rewrite left its garbage behind
        assert done["garbage_bytes_after"] == 0
        assert done["blob_bytes_after"] < 1.2 * len(live) * SIZE
        await _check(store, live)
    finally:
        await store.close()


async def _check(store: NodeStore, live: dict[str, bytes]) -> None:
    assert await store.shard_ids("", 10 * SHARDS) == sorted(live)
    for key, data in live.items():
        assert await store.get_shard(key) == data, key
        assert await store.shard_hash(key) == content_hash(data)
