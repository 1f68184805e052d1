"""cluster.rocksdbcrc: RocksDB with hardware CRC32C reads and writes the same files.

Each direction runs in two processes: one writes a store (shards flushed to blob and
table files, then more writes that live only in the WAL) and is SIGKILLed; the other,
with the opposite CRC32C implementation, replays that WAL and must find every
acknowledged write, then reads every value with RocksDB's own checksums on. A patch
that computed different checksums fails here: the WAL replay stops at the first bad
record (writes go missing) and a checked read raises Corruption.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, json, os, signal, sys
import blake3, rocksdict
from cluster import rocksdbcrc
from cluster.nodeauth import content_hash
from cluster.store import NodeStore

mode, path = sys.argv[1], sys.argv[2]
FLUSHED, IN_WAL = 24, 8

def shard(i):
    return blake3.blake3(b"shard %d" % i).digest(length=256 * 1024 + i)

async def write():
    store = NodeStore(path)
    await store.start()
    async def put(lo, hi):
        for i in range(lo, hi):
            await store.put_shard(f"s{i}.0", shard(i), content_hash(shard(i)))
            await store.meta_put([(f"k{i}", {"hlc": [i + 1, 0, "t"], "n": i})])
    await put(0, FLUSHED)
    await store.reclaim_blob_space()  # flushes the shards to a blob file and a table file
    await put(FLUSHED, FLUSHED + IN_WAL)
    print(json.dumps({"patched": rocksdbcrc.accelerate()}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # acknowledged; the WAL must bring the rest back

async def read():
    store = NodeStore(path)  # replays the WAL
    await store.start()
    found = 0
    for i in range(FLUSHED + IN_WAL):
        assert await store.get_shard(f"s{i}.0") == shard(i), i
        assert (await store.meta_get([f"k{i}"]))[0]["n"] == i, i
        found += 1
    await store.close()
    checked = rocksdict.ReadOptions()
    checked.set_verify_checksums(True)
    raw = rocksdict.Options(raw_mode=True)
    names = rocksdict.Rdict.list_cf(path, raw)
    db = rocksdict.Rdict(path, raw, column_families={n: rocksdict.Options(raw_mode=True)
                                                     for n in names})
    values = 0
    for name in names:
        cf = db.get_column_family(name)
        for _key, value in cf.items(read_opt=checked):
            values += len(value)
        cf.compact_range(None, None)  # reads every table block, checksums checked
    db.close()
    print(json.dumps({"patched": rocksdbcrc.accelerate(), "found": found,
                      "value_bytes": values}), flush=True)

asyncio.run(write() if mode == "write" else read())
"""


def run(mode: str, path: Path, soft: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_ROCKSDB_SOFT_CRC"}
    if soft:
        env["SHOAL_ROCKSDB_SOFT_CRC"] = "1"
    return subprocess.run([sys.executable, "-c", SCRIPT, mode, str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("writer_soft", [True, False], ids=["soft-writes", "hardware-writes"])
def test_files_cross_between_software_and_hardware_crc(tmp_path: Path, writer_soft: bool) -> None:
    wrote = run("write", tmp_path / "db", soft=writer_soft)
    assert wrote.returncode == -9, wrote.stderr  # killed after its last acknowledged write
    assert json.loads(wrote.stdout) == {"patched": not writer_soft}
    read = run("read", tmp_path / "db", soft=not writer_soft)
    assert read.returncode == 0, read.stderr
    got = json.loads(read.stdout)
    assert got["patched"] == writer_soft
    assert got["found"] == 32
    assert got["value_bytes"] > 32 * 256 * 1024  # the shard values were read, checked


def test_refuses_a_function_that_is_not_crc32c() -> None:
    # The check that guards the jump must tell a wrong address from the right one.
    import ctypes

    from cluster import rocksdbcrc

    not_crc = ctypes.cast(ctypes.CDLL(None).labs, ctypes.c_void_p).value  # returns its seed
    assert not_crc is not None and not rocksdbcrc._computes_crc32c(not_crc)
