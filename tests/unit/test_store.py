"""cluster.store: the LWW order (property tests) and the RocksDB store on a real DB."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest
import rocksdict
from hypothesis import given
from hypothesis import strategies as st

from cluster import dboptions
from cluster.dboptions import direct_io_works
from cluster.hlc import newer
from cluster.nodeauth import content_hash
from cluster.store import CorruptShard, NodeStore, StoreClosed, is_tombstone
from gateway.records import (
    BlockRef,
    BucketRecord,
    ObjectRecord,
    PartRecord,
    ShardRef,
    UploadRecord,
)
from tests.harness import digest_by_definition, rocksdb_options

hlcs = st.tuples(
    st.integers(0, 2**48), st.integers(0, 2**16), st.sampled_from(["g1", "g2", "n3"])
)
records = st.builds(
    lambda hlc, deleted, etag: {"hlc": list(hlc), "deleted": deleted, "etag": etag},
    hlcs,
    st.booleans(),
    st.sampled_from(["a", "b"]),
)


def merge(a: dict, b: dict | None) -> dict:
    return a if newer(a, b) else b  # type: ignore[return-value]


@given(records, records)
def test_newer_is_a_strict_total_order(a: dict, b: dict) -> None:
    assert not newer(a, a)
    if a != b:
        assert newer(a, b) != newer(b, a)
    else:
        assert not newer(a, b) and not newer(b, a)


@given(records, records, records)
def test_newer_is_transitive(a: dict, b: dict, c: dict) -> None:
    if newer(a, b) and newer(b, c):
        assert newer(a, c)


@given(records, records, records)
def test_merge_is_idempotent_commutative_associative(a: dict, b: dict, c: dict) -> None:
    assert merge(a, a) == a
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(records)
def test_anything_beats_absent(a: dict) -> None:
    assert newer(a, None)


@given(hlcs, hlcs)
def test_order_follows_hlc_tuple(h1: tuple, h2: tuple) -> None:
    a, b = {"hlc": list(h1)}, {"hlc": list(h2), "deleted": True}
    if h1 != h2:
        assert newer(a, b) == (h1 > h2)


@pytest.mark.parametrize(
    "bad", [{}, {"hlc": [1, 2]}, {"hlc": [1, "2", "o"]}, {"hlc": [1, 2, 3]}, {"hlc": [True, 0, "o"]}]
)
def test_malformed_hlc_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        newer(bad, None)


def run(path: Path, body) -> object:  # type: ignore[no-untyped-def]
    async def main() -> object:
        store = NodeStore(path)
        await store.start()
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_concurrent_writes_group_commit_and_survive_reopen(tmp_path: Path) -> None:
    shards = {f"b{i}.{j}": bytes([i]) * (1000 + 70_000 * j) for i in range(40) for j in range(2)}

    async def write(store: NodeStore) -> None:
        await asyncio.gather(
            *(store.put_shard(k, v, content_hash(v)) for k, v in shards.items()),
            *(store.meta_put([(f"obj/{i}", {"hlc": [i, 0, "g"]})]) for i in range(200)),
        )
        assert store.committed_ops == len(shards) + 200
        assert store.commit_groups < store.committed_ops / 10  # writes shared synced batches

    run(tmp_path, write)

    async def read(store: NodeStore) -> None:
        for k, v in shards.items():
            assert await store.get_shard(k) == v
            assert await store.shard_hash(k) == content_hash(v)
        recs = await store.meta_get([f"obj/{i}" for i in range(200)])
        assert [r["hlc"][0] for r in recs] == list(range(200))  # type: ignore[index]
        assert store.stats()["shards"] >= 1

    run(tmp_path, read)


def test_lww_within_one_group_and_one_call(tmp_path: Path) -> None:
    async def body(store: NodeStore) -> list:
        old, new = {"hlc": [1, 0, "a"], "v": 1}, {"hlc": [2, 0, "a"], "v": 2}
        # Same key written by concurrent callers (one commit group) and twice in one call.
        res = await asyncio.gather(store.meta_put([("k", new)]), store.meta_put([("k", old)]))
        assert res == [[True], [False]]
        assert await store.meta_put([("j", old), ("j", new), ("j", old)]) == [True, True, False]
        return await store.meta_get(["k", "j", "absent"])

    assert run(tmp_path, body) == [
        {"hlc": [2, 0, "a"], "v": 2},
        {"hlc": [2, 0, "a"], "v": 2},
        None,
    ]


def test_malformed_meta_put_writes_nothing(tmp_path: Path) -> None:
    async def body(store: NodeStore) -> list:
        with pytest.raises(ValueError):
            await store.meta_put([("ok", {"hlc": [1, 0, "a"]}), ("bad", {"v": 1})])
        return await store.meta_get(["ok", "bad"])

    assert run(tmp_path, body) == [None, None]


def test_scan_is_utf8_byte_order_with_limit(tmp_path: Path) -> None:
    keys = ["b/a", "b/z", "b/é", "b/日本", "b/\U0001f600", "b/Z", "c/x", "a/x"]

    async def body(store: NodeStore) -> None:
        await store.meta_put([(k, {"hlc": [1, 0, "o"]}) for k in keys])
        expected = sorted((k for k in keys if k.startswith("b/")), key=str.encode)
        items, more = await store.meta_scan("b/", "b0", 100)
        assert [k for k, _ in items] == expected and not more
        items, more = await store.meta_scan("b/", "b0", 3)
        assert [k for k, _ in items] == expected[:3] and more
        items, more = await store.meta_scan(expected[2] + "\0", "b0", 100)
        assert [k for k, _ in items] == expected[3:] and not more
        items, more = await store.meta_scan("b/", "", 100)  # unbounded end
        assert [k for k, _ in items] == [*expected, "c/x"] and not more

    run(tmp_path, body)


def test_cuts_split_a_range_every_n_keys_in_scan_order(tmp_path: Path) -> None:
    keys = [f"o/b/k{i:03d}" for i in range(10)] + ["o/b/é", "o/c/x"]

    async def body(store: NodeStore) -> None:
        await store.meta_put([(k, {"hlc": [1, 0, "o"], "blob": "x" * 5000}) for k in keys])
        in_b = [k for k, _ in (await store.meta_scan("o/b/", "o/b0", 100))[0]]
        assert await store.meta_cuts("o/b/", "o/b0", 4) == in_b[4::4]
        assert await store.meta_cuts("o/b/", "o/b0", 1) == in_b[1:]
        assert await store.meta_cuts("o/b/", "", 11) == ["o/c/x"]  # unbounded end
        assert await store.meta_cuts("o/b/", "o/b0", 100) == []
        with pytest.raises(ValueError):
            await store.meta_cuts("o/", "", 0)

    run(tmp_path, body)


def test_deleted_shards_space_is_reclaimed_past_the_threshold(tmp_path: Path) -> None:
    """Deleting shards leaves their bytes in blob files; reclaiming rewrites the files
    only once the garbage passes the threshold, and every live shard still reads."""
    shards = {f"b{i}.0": bytes([i]) * 300_000 for i in range(24)}

    async def body(store: NodeStore) -> None:
        for i, (k, v) in enumerate(shards.items()):
            await store.put_shard(k, v, content_hash(v))
            if i % 6 == 5:  # nothing deleted: it flushes, so each round makes a blob file
                first = await store.reclaim_blob_space()
        assert first["blob_bytes"] >= 24 * 300_000 and not first["garbage_bytes"]
        files = sorted(tmp_path.glob("*.blob"))
        assert len(files) == 4
        await store.reclaim_blob_space()  # compacts; live shards are not copied around
        assert sorted(tmp_path.glob("*.blob")) == files
        doomed = [k for i, k in enumerate(shards) if i % 3]
        await store.delete_shards(doomed)
        before = await store.reclaim_blob_space(ratio=0.25, minimum=10 << 20)
        assert before["garbage_bytes"] >= 16 * 300_000
        assert not before["rewritten"]  # under the 10 MiB minimum
        done = await store.reclaim_blob_space(ratio=0.25, minimum=1 << 20)
        assert done["rewritten"] and done["garbage_bytes_after"] == 0
        assert done["blob_bytes_after"] < done["blob_bytes"] / 2
        again = await store.reclaim_blob_space(ratio=0.25, minimum=1 << 20)
        assert not again["rewritten"]
        for i, (k, v) in enumerate(shards.items()):
            assert await store.get_shard(k) == (None if i % 3 else v)

    run(tmp_path, body)
    run(tmp_path, lambda store: _check_shards(store, {
        k: v for i, (k, v) in enumerate(shards.items()) if not i % 3}))


async def _check_shards(store: NodeStore, live: dict[str, bytes]) -> None:
    assert await store.shard_ids("", 100) == sorted(live)
    for k, v in live.items():
        assert await store.get_shard(k) == v


def test_drop_deletes_only_the_clock_it_was_shown(tmp_path: Path) -> None:
    """A non-owner drops copies the owners hold; a record rewritten since (even in the same
    commit group) is kept, and digests stop counting what was dropped."""
    old, new = {"hlc": [1, 0, "g"]}, {"hlc": [2, 0, "g"]}

    async def body(store: NodeStore) -> None:
        await store.meta_put([("o/b/x", old), ("o/b/y", old), ("o/b/z", old)])
        assert await store.meta_digests(["o/", "o0"]) == [digest_by_definition(
            {"o/b/x": old, "o/b/y": old, "o/b/z": old})]
        dropped, _ = await asyncio.gather(
            store.meta_drop([("o/b/x", (1, 0, "g")), ("o/b/y", (1, 0, "g")),
                             ("o/b/z", (9, 0, "g")), ("o/b/absent", (1, 0, "g"))]),
            store.meta_put([("o/b/y", new)]))  # queued behind the drop: written after it
        assert dropped == 2
        assert await store.meta_get(["o/b/x", "o/b/y", "o/b/z"]) == [None, new, old]
        assert await store.meta_drop([("o/b/y", (1, 0, "g"))]) == 0  # y changed since
        assert await store.meta_digests(["o/", "o0"]) == [digest_by_definition(
            {"o/b/y": new, "o/b/z": old})]
        assert await store.meta_drop([("o/b/z", (1, 0, "g"))]) == 1  # a drop alone
        assert await store.meta_digests(["o/", "o0"]) == [digest_by_definition(
            {"o/b/y": new})]

    run(tmp_path, body)


def test_purge_deletes_only_current_tombstones_and_raises_the_mark_with_them(
        tmp_path: Path) -> None:
    tomb = {"hlc": [5, 0, "g"], "deleted": True}
    marker = {"hlc": [5, 0, "g"], "deleted": True, "delete_marker": True}
    live = {"hlc": [5, 0, "g"], "size": 1}

    async def body(store: NodeStore) -> None:
        await store.meta_put([("o/b/t", tomb), ("o/b/u", tomb), ("o/b/m", marker),
                              ("o/b/l", live), ("o/c/t", tomb)])
        assert store.purge_mark("b") == 0
        await store.meta_put([("o/b/u", {**live, "hlc": [6, 0, "g"]})])
        purged, late = await asyncio.gather(
            store.meta_purge("b", [(k, (5, 0, "g")) for k in
                                   ("o/b/t", "o/b/u", "o/b/m", "o/b/l")], 5),
            store.meta_put([("o/b/t", {**live, "hlc": [4, 0, "g"]})]))  # queued after
        # Only the tombstone: "u" was rewritten after the purge was decided, the delete
        # marker is a version clients see, and "l" is live. The write queued behind the
        # purge is older than the purged tombstone: refused.
        assert (purged, late) == (1, [False])
        assert await store.meta_get(["o/b/t", "o/b/m", "o/b/l", "o/c/t"]) == [
            None, marker, live, tomb]
        assert (store.purge_mark("b"), store.purge_mark("c")) == (5, 0)
        # What a read answers beside an absent record: its partition's mark, by key.
        assert store.purge_marks(["o/b/t", "v/b/x\0v1", "o/c/t", "o/bb/t", "junk"]) == [
            5, 5, 0, 0, 0]
        assert await store.meta_digests(["o/b/", "o/b0"]) == [digest_by_definition(
            {"o/b/u": {**live, "hlc": [6, 0, "g"]}, "o/b/m": marker, "o/b/l": live})]
        # A stale copy of a purged key is refused; a newer write of it, or an old one in
        # another partition, is not.
        assert await store.meta_put([("o/b/t", live), ("o/b/t2", live),
                                     ("o/c/new", live)]) == [False, False, True]
        assert await store.meta_put([("o/b/t", {**live, "hlc": [6, 0, "g"]})]) == [True]
        assert await store.meta_purge("b", [], 3) == 0  # a mark never goes down
        assert store.purge_mark("b") == 5

    async def reopened(store: NodeStore) -> None:
        assert store.purge_mark("b") == 5  # durable with the purge
        await store.reset_purge_mark("b")
        assert store.purge_mark("b") == 0
        assert await store.meta_put([("o/b/t2", live)]) == [True]

    async def after_reset(store: NodeStore) -> None:
        assert store.purge_mark("b") == 0

    run(tmp_path, body)
    run(tmp_path, reopened)
    run(tmp_path, after_reset)


def test_tombstones_are_told_from_live_records_by_their_bytes() -> None:
    """``is_tombstone`` reads no JSON: every record kind, full of strings that quote
    "deleted", must still read as live, and every kind of delete as one."""
    tricky = {'"deleted":true': 'x":true', "deleted": "true", "d": 'deleted\\":true'}
    block = BlockRef(id="b" * 32, size=1, shards=[ShardRef("node-1", "h" * 32)])
    live = [
        ObjectRecord(bucket="b", key='k"deleted":true', hlc=[1, 0, "g"], user_meta=tricky,
                     headers=tricky, tags=tricky, blocks=[block], delete_marker=False,
                     policy={"scheme": "ec", "encrypt": True}),
        BucketRecord(name="b", hlc=[1, 0, "g"], tags=tricky, website=tricky,
                     cors=[{"AllowedOrigins": ['"deleted":true']}]),
        UploadRecord(bucket="b", key="k", upload_id="u", hlc=[1, 0, "g"], user_meta=tricky),
        PartRecord(upload_id="u", number=1, hlc=[1, 0, "g"], blocks=[block]),
    ]
    for rec in live:
        assert not is_tombstone(orjson.dumps(rec.to_dict())), rec
    deletes = [{"bucket": "b", "key": "k", "hlc": [1, 0, "g"], "deleted": True, "v": 1},
               {**live[0].to_dict(), "deleted": True, "delete_marker": True},
               {"name": "b", "hlc": [1, 0, "g"], "deleted": True, "v": 1}]
    for rec in deletes:
        assert is_tombstone(orjson.dumps(rec)), rec


def test_wrong_stored_hash_is_detected_on_read(tmp_path: Path) -> None:
    async def body(store: NodeStore) -> None:
        await store.put_shard("x.0", b"payload", content_hash(b"other"))
        with pytest.raises(CorruptShard):
            await store.get_shard("x.0")
        await store.delete_shards(["x.0", "never-existed"])
        assert await store.get_shard("x.0") is None
        with pytest.raises(ValueError):
            await store.put_shard("x.1", b"payload", "abc")

    run(tmp_path, body)


def test_rot_in_a_blob_file_is_caught_by_blake3(tmp_path: Path) -> None:
    """Shard reads skip RocksDB's own blob checksum (the store's BLAKE3 covers the bytes):
    a byte flipped on disk inside a blob file must still fail the read, whole or spans."""
    data = bytes(range(256)) * 1024  # 256 KiB: stored in a blob file, not inline

    async def write(store: NodeStore) -> None:
        await store.put_shard("rot.0", data, content_hash(data))
        store._shards.flush()  # out of the memtable and into a blob file on disk

    run(tmp_path, write)
    blob = next(tmp_path.glob("*.blob"))
    raw = bytearray(blob.read_bytes())
    at = raw.find(data[:4096]) + 5000
    raw[at] ^= 0x01
    blob.write_bytes(bytes(raw))

    async def read(store: NodeStore) -> None:
        with pytest.raises(CorruptShard):
            await store.get_shard("rot.0")
        with pytest.raises(CorruptShard):
            await store.get_shard_with_hash("rot.0", [(0, 10)])

    run(tmp_path, read)


def test_span_reads_check_the_chunks_they_return(tmp_path: Path) -> None:
    """The first span read checks the whole shard and keeps its 64 KiB chunk digests;
    later span reads hash only the chunks they cut from. Rot in another chunk then goes
    unseen by a span read (the scrubber and whole reads still see it), rot under the
    span does not; a rewritten or deleted shard drops its chunk digests."""
    chunk = 64 * 1024
    data = bytes(range(256)) * 1024  # 4 chunks, in a blob file

    async def write(store: NodeStore) -> None:
        await store.put_shard("ch.0", data, content_hash(data))
        store._shards.flush()
        got = await store.get_shard_with_hash("ch.0", [(10, 20), (chunk + 5, chunk + 9)])
        assert got == (data[10:20] + data[chunk + 5:chunk + 9], content_hash(data))

    run(tmp_path, write)
    blob = next(tmp_path.glob("*.blob"))
    raw = bytearray(blob.read_bytes())
    raw[raw.find(data[:4096]) + 2 * chunk + 7] ^= 0x01  # inside chunk 2
    blob.write_bytes(bytes(raw))

    async def read(store: NodeStore) -> None:
        assert (await store.get_shard_with_hash("ch.0", [(0, chunk)]))[0] == data[:chunk]
        for span in [(2 * chunk, 2 * chunk + 1), (chunk, 3 * chunk), (3 * chunk - 1, 3 * chunk)]:
            with pytest.raises(CorruptShard):
                await store.get_shard_with_hash("ch.0", [span])
        with pytest.raises(CorruptShard):
            await store.get_shard("ch.0")
        # Rewritten (as repair does): the new bytes get new chunk digests.
        fresh = bytes(reversed(data))
        await store.put_shard("ch.0", fresh, content_hash(fresh))
        for span in [(2 * chunk, 2 * chunk + 8), (0, 4)]:
            got = await store.get_shard_with_hash("ch.0", [span])
            assert got is not None and got[0] == fresh[span[0]:span[1]]
        await store.delete_shards(["ch.0"])
        assert await store.get_shard_with_hash("ch.0", [(0, 4)]) is None
        assert store._chunks.get(b"ch.0") is None

    run(tmp_path, read)


def write_first_layout(path: Path, family: str, values: dict[str, bytes]) -> None:
    """A DB in the first layout (``shards`` and ``meta`` only, no index families) holding
    ``values`` in ``family``, as nodes made before the indexes left it."""
    opts = rocksdict.Options(raw_mode=True)
    opts.create_missing_column_families(True)
    db = rocksdict.Rdict(str(path), opts, column_families={
        "shards": rocksdict.Options(raw_mode=True), "meta": rocksdict.Options(raw_mode=True)})
    cf = db.get_column_family(family)
    for k, v in values.items():
        cf[k.encode()] = v
    del cf
    db.close()


def test_shard_ids_and_hashes_come_from_the_index_and_old_dbs_get_one(tmp_path: Path) -> None:
    """A DB written before the ``shard_hashes`` index existed (value = digest + bytes in
    ``shards`` only) is indexed when opened; deletes remove shard and index entry."""
    old = {f"old{i}.0": bytes([i]) * 100_000 for i in range(3)}
    write_first_layout(tmp_path, "shards",
                       {k: bytes.fromhex(content_hash(v)) + v for k, v in old.items()})

    async def body(store: NodeStore) -> None:
        assert await store.shard_ids("", 10) == sorted(old)
        for k, v in old.items():
            assert await store.shard_hash(k) == content_hash(v)
            assert await store.get_shard(k) == v
        await store.put_shard("new.0", b"n" * 70_000, content_hash(b"n" * 70_000))
        await store.delete_shards(["old1.0"])
        assert await store.shard_ids("", 10) == ["new.0", "old0.0", "old2.0"]
        assert await store.shard_ids("old0.0", 10) == ["old2.0"]
        assert await store.shard_hash("old1.0") is None

    run(tmp_path, body)


def test_digests_come_from_the_clock_index_and_old_dbs_get_one(tmp_path: Path) -> None:
    """A DB written before the ``meta_clocks`` index existed (records in ``meta`` only) is
    indexed when opened, and digests keep their definition before and after writes."""
    old = {f"o/b/k{i}": {"hlc": [1000 + i, i, "gw-é/1"], "size": i, "blocks": [[i] * 9]}
           for i in range(2500)}
    write_first_layout(tmp_path, "meta", {k: orjson.dumps(v) for k, v in old.items()})
    newer_rec = {"hlc": [5000, 0, "gw2"], "size": 1}

    async def body(store: NodeStore) -> None:
        assert await store.meta_digests(["o/", "o0"]) == [digest_by_definition(old)]
        assert await store.meta_digests(["o/b/k1", "o/b/k2", ""]) == [
            digest_by_definition({k: v for k, v in old.items() if k.startswith("o/b/k1")}),
            digest_by_definition({k: v for k, v in old.items() if k >= "o/b/k2"})]
        stale = {"hlc": [1, 0, "gw0"], "size": 0}  # loses to the stored record
        assert await store.meta_put([("o/b/k7", newer_rec), ("o/b/k8", stale),
                                     ("o/b/new", newer_rec)]) == [True, False, True]
        now = {**old, "o/b/k7": newer_rec, "o/b/new": newer_rec}
        assert await store.meta_digests(["o/", ""]) == [digest_by_definition(now)]

    run(tmp_path, body)
    # Reopened: the index is complete, so it is not rebuilt, and it still agrees.
    run(tmp_path, lambda store: _check_digest(store, {**old, "o/b/k7": newer_rec,
                                                       "o/b/new": newer_rec}))


async def _check_digest(store: NodeStore, records: dict[str, dict]) -> None:
    assert await store.meta_digests(["", ""]) == [digest_by_definition(records)]


def test_cached_digests_follow_every_applied_write(tmp_path: Path) -> None:
    """Digests are cached between writes; a write that wins, even one whose caller was
    cancelled while it waited for the commit, changes the answer for the same bounds, and
    only applied writes reach the change log."""
    first, later = {"hlc": [2, 0, "g"]}, {"hlc": [3, 0, "g"]}
    bounds = ["o/b/", "o/b0"]

    async def body(store: NodeStore) -> None:
        await store.meta_put([("o/b/k", first)])
        store.changes.take()
        assert await store.meta_digests(bounds) == [digest_by_definition({"o/b/k": first})]
        assert await store.meta_put([("o/b/k", {"hlc": [1, 0, "g"]})]) == [False]
        assert store.changes.take() == ({}, set())
        assert await store.meta_digests(bounds) == [digest_by_definition({"o/b/k": first})]
        waiting = asyncio.ensure_future(store.meta_put([("o/b/k", later), ("o/c/j", later)]))
        await asyncio.sleep(0)  # queued for the writer
        waiting.cancel()
        for _ in range(100):
            if store.changes.generation and (await store.meta_get(["o/b/k"]))[0] == later:
                break
            await asyncio.sleep(0.01)
        assert await store.meta_digests(bounds) == [digest_by_definition({"o/b/k": later})]
        assert store.changes.take() == ({"b": {"o/b/k"}, "c": {"o/c/j"}}, set())

    run(tmp_path, body)


def test_a_closing_store_finishes_queued_reads_and_refuses_later_ones(tmp_path: Path) -> None:
    # A node's background scans once met a half-closed store (AttributeError in the log).
    async def body() -> None:
        store = NodeStore(tmp_path)
        await store.start()
        await store.meta_put([(f"k{i:03d}", {"hlc": [1, 0, "a"]}) for i in range(300)])
        queued = asyncio.ensure_future(store.meta_scan("k", "l", 1000))
        await asyncio.sleep(0)  # the scan is on the store's thread before close begins
        await store.close()
        items, more = await queued
        assert len(items) == 300 and not more
        for later in (store.meta_scan("k", "l", 10), store.meta_get(["k001"]),
                      store.shard_hash("s"), store.meta_put([("x", {"hlc": [2, 0, "a"]})])):
            with pytest.raises(StoreClosed):
                await later
        with pytest.raises(StoreClosed):
            store.stats()
        reopened = NodeStore(tmp_path)  # the lock was released
        assert reopened.meta_get_raw(["x"]) == [None]
        await reopened.close()

    asyncio.run(body())


def test_second_open_of_a_locked_db_raises(tmp_path: Path) -> None:
    async def body(store: NodeStore) -> None:
        with pytest.raises(Exception, match="(?i)lock"):
            NodeStore(tmp_path)

    run(tmp_path, body)


def test_hot_shards_serve_span_reads_and_never_outlive_a_delete(tmp_path: Path) -> None:
    """A span read keeps the shard in memory: later span reads do not read the disk
    (a copy changed behind the store's back goes unseen by them, and whole reads, which
    scrub and repair use, still see it). A delete drops it, also one that commits while
    a span read of the same shard is under way."""
    data = bytes(range(256)) * 1024

    async def body(store: NodeStore) -> None:
        await store.put_shard("hot.0", data, content_hash(data))
        assert (await store.get_shard_with_hash("hot.0", [(5, 9)]))[0] == data[5:9]
        store._shards[b"hot.0"] = bytes.fromhex(content_hash(data)) + bytes(len(data))
        assert (await store.get_shard_with_hash("hot.0", [(70_000, 70_010)]))[0] == \
            data[70_000:70_010]
        with pytest.raises(CorruptShard):
            await store.get_shard("hot.0")
        await store.delete_shards(["hot.0"])
        assert await store.get_shard_with_hash("hot.0", [(5, 9)]) is None
        for i in range(20):
            key = f"race{i}.0"
            await store.put_shard(key, data, content_hash(data))
            read, _ = await asyncio.gather(store.get_shard_with_hash(key, [(0, 4)]),
                                           store.delete_shards([key]))
            assert read is not None and read[0] == data[:4]
            assert await store.get_shard_with_hash(key, [(0, 4)]) is None, i

    run(tmp_path, body)


def test_a_filesystem_without_o_direct_gets_buffered_io(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where O_DIRECT is refused the store opens with buffered I/O instead of failing
    at its first flush; where it works, RocksDB runs with direct I/O."""
    assert direct_io_works(tmp_path)
    monkeypatch.setattr(os, "open", _refusing_o_direct(os.open))
    assert not direct_io_works(tmp_path)
    data = b"x" * 200_000

    async def body(store: NodeStore) -> None:
        await store.put_shard("a.0", data, content_hash(data))
        await store.reclaim_blob_space(minimum=1 << 40)  # flushes the memtable
        assert await store.get_shard("a.0") == data

    run(tmp_path, body)
    assert "use_direct_io_for_flush_and_compaction=false" in rocksdb_options(tmp_path)


def test_wal_files_go_once_their_shards_are_flushed_though_records_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One record written first keeps the records family's memtable, and so every WAL
    file since, alive: without a WAL cap they piled up behind the shard flushes."""
    monkeypatch.setattr(dboptions, "MAX_WAL_BYTES", 16 << 20)
    data = os.urandom(1 << 20)

    def wal_bytes() -> int:
        return sum(f.stat().st_size for f in tmp_path.glob("*.log"))

    async def body(store: NodeStore) -> int:
        await store.meta_put([("obj/kept", {"hlc": [1, 0, "g"]})])
        for i in range(160):  # 2.5 shard memtables
            await store.put_shard(f"s{i}.0", data, content_hash(data))
        for _ in range(50):  # obsolete WAL files are deleted just after their flush
            if wal_bytes() < 64 << 20:
                break
            await asyncio.sleep(0.1)
        return wal_bytes()

    assert run(tmp_path, body) < 64 << 20  # uncapped: 160 MiB, three files

    async def reopened(store: NodeStore) -> None:
        assert await store.meta_get(["obj/kept"]) == [{"hlc": [1, 0, "g"]}]
        for i in range(160):
            assert await store.get_shard(f"s{i}.0") == data

    run(tmp_path, reopened)


def _refusing_o_direct(real_open):  # noqa: ANN001, ANN202
    def refusing(path, flags, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if flags & os.O_DIRECT:
            raise OSError(22, "Invalid argument")  # what tmpfs and FUSE answered
        return real_open(path, flags, *args, **kwargs)
    return refusing
