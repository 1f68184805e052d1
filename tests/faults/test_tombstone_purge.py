"""Deletes' tombstones are purged once every owner holds them -- never while an owner is
away -- and a stale copy of a purged object cannot bring it back.

The grace is 2 s and anti-entropy runs every second, so a purge is due within a few
seconds of a delete. An owner is SIGSTOPped after the deletes reached it: alive in gossip
but silent, the worst case for a purge that would count only the owners that answer.
Then a node that owns nothing of the bucket is handed stale copies of purged objects (as
a former owner back from a long absence would hold them): they must be dropped, not
pushed, while a newer record handed to it the same way still reaches the owners. Last,
an owner comes back holding such a copy and is read before its anti-entropy drops it:
reads and listings must not show the purged object.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from cluster.store import NodeStore
from gateway.adminclient import AdminClient, locate
from tests.harness import (
    cluster_with_env,
    error_of,
    metadata_placement,
    node_call,
    on_node,
    wait_until,
)

ENV = {"SHOAL_SYNC_INTERVAL": "1", "SHOAL_TOMBSTONE_GRACE": "2"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with cluster_with_env(tmp_path_factory.mktemp("purge") / "data", ENV) as c:
        yield c


def forget_purge_mark(db: Path, partition: str) -> None:
    """Clear a stopped node's purge mark, as on a disk from before the purge."""

    async def run() -> None:
        store = NodeStore(db)
        await store.start()
        try:
            await store.reset_purge_mark(partition)
        finally:
            await store.close()

    asyncio.run(run())


def sync_passes(cluster, node: str) -> int:  # noqa: ANN001
    sync = AdminClient(*locate(cluster.data)).repair()["nodes"][node].get("sync", {})
    return 0 if sync.get("running") else sync.get("passes", 0)


def filled_bucket(cluster, bucket: str, names: str):  # noqa: ANN001, ANN201
    """A client, and a new bucket holding one small object per name ("bytes of NAME")."""
    s3 = cluster.client()
    s3.create_bucket(Bucket=bucket)
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=f"bytes of {name}".encode())
    return s3


def tombstones(records: list) -> bool:
    return all(r is not None and r["deleted"] for r in records)


def test_a_silent_owner_holds_the_purge_back_and_no_delete_is_undone(cluster):
    bucket = "purge-stop"
    s3 = cluster.client()
    s3.create_bucket(Bucket=bucket)
    names = [f"k{i:02d}" for i in range(30)]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    kept, deleted = names[::3], [n for n in names if n not in names[::3]]
    for name in deleted:
        s3.delete_object(Bucket=bucket, Key=name)
    keys = [f"o/{bucket}/{n}" for n in deleted]
    owners, apis = metadata_placement(cluster, bucket, kept[0])
    assert wait_until(lambda: all(tombstones(on_node(cluster, apis[o], keys))
                                  for o in owners), 20)

    stopped = owners[0]
    cluster.signal_node(stopped, signal.SIGSTOP)
    try:
        # Five times the grace, many sync passes: the owners that answer keep every one.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for o in owners[1:]:
                assert tombstones(on_node(cluster, apis[o], keys)), o
            time.sleep(0.5)
    finally:
        cluster.signal_node(stopped, signal.SIGCONT)

    assert wait_until(lambda: all(on_node(cluster, apis[o], keys) == [None] * len(keys)
                                  for o in owners), 60)
    for o in owners:
        assert all(r is not None and not r["deleted"]
                   for r in on_node(cluster, apis[o], [f"o/{bucket}/{n}" for n in kept])), o
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == kept
    for name in deleted:
        assert error_of(s3.head_object, Bucket=bucket, Key=name) == ("404", 404)
    for name in kept:
        assert s3.get_object(Bucket=bucket, Key=name)["Body"].read() == name.encode()


def test_a_stale_copy_of_a_purged_object_is_dropped_not_brought_back(cluster):
    bucket = "purge-stale"
    s3 = filled_bucket(cluster, bucket, "abc")
    owners, apis = metadata_placement(cluster, bucket, "a")
    holder = next(n for n in sorted(apis) if n not in owners)
    keys = [f"o/{bucket}/{n}" for n in "abc"]
    rec_a, rec_b, rec_c = on_node(cluster, apis[owners[0]], keys)
    s3.delete_object(Bucket=bucket, Key="a")
    s3.delete_object(Bucket=bucket, Key="b")
    assert wait_until(lambda: all(on_node(cluster, apis[o], keys[:2]) == [None, None]
                                  for o in owners), 60)

    # An owner refuses the stale copies outright: it purged what deleted them.
    refused = node_call(cluster, lambda client: client.meta_put(
        apis[owners[0]], [(keys[0], rec_a), (keys[1], rec_b)]))
    assert refused == [False, False]
    # A non-owner takes them, as a returning former owner would still hold them, beside
    # a newer "c" that the owners lack (a write it took while it still owned the bucket).
    newer_c = {**rec_c, "hlc": [int(time.time() * 1000), 0, "test"]}
    planted = on_node(cluster, apis[holder], keys,
                      put=[(keys[0], rec_a), (keys[1], rec_b), (keys[2], newer_c)])
    assert planted == [rec_a, rec_b, newer_c]

    assert wait_until(lambda: on_node(cluster, apis[holder], keys) == [None] * 3, 60)
    for o in owners:
        assert on_node(cluster, apis[o], keys) == [None, None, newer_c], o
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == ["c"]
    for name in "ab":
        assert error_of(s3.get_object, Bucket=bucket, Key=name) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"bytes of c"


def test_an_owner_back_with_a_stale_copy_cannot_serve_a_purged_delete(cluster):
    bucket = "purge-return"
    s3 = filled_bucket(cluster, bucket, "ac")
    owners, apis = metadata_placement(cluster, bucket, "a")
    back = owners[0]  # the owner every read asks first
    keys = [f"o/{bucket}/a", f"o/{bucket}/c"]
    rec_a, rec_c = on_node(cluster, apis[back], keys)
    s3.delete_object(Bucket=bucket, Key="a")
    assert wait_until(lambda: all(on_node(cluster, apis[o], keys[:1]) == [None]
                                  for o in owners), 60)

    # `back` returns with its disk from before the purge (no mark), and syncs once at
    # start, then hourly: the stale copy handed to it after that first pass stays on it,
    # as it would on a returning owner until its first sync.
    cluster.kill_node(back)
    argv, env = cluster.killed[back]
    forget_purge_mark(Path(argv[argv.index("--data") + 1]) / "db", bucket)
    cluster.killed[back] = (argv, {**env, "SHOAL_SYNC_INTERVAL": "3600"})
    cluster.restart_node(back)
    assert wait_until(lambda: sync_passes(cluster, back) >= 1, 30)
    newer_c = {**rec_c, "user_meta": {"from": "back"}, "hlc": [int(time.time() * 1000), 0, "t"]}
    on_node(cluster, apis[back], keys, put=[(keys[0], rec_a), (keys[1], newer_c)])

    # Reads ask `back`: the newer "c" only it held is what HEAD answers...
    assert wait_until(lambda: s3.head_object(Bucket=bucket, Key="c")["Metadata"]
                      == {"from": "back"}, 30)
    # ...and its copy of "a" is not taken for the object: the owner read beside it
    # purged the delete of "a" and says so.
    assert error_of(s3.get_object, Bucket=bucket, Key="a") == ("NoSuchKey", 404)
    assert error_of(s3.head_object, Bucket=bucket, Key="a") == ("404", 404)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]
    versions = s3.list_object_versions(Bucket=bucket)
    assert [v["Key"] for v in versions.get("Versions", [])] == ["c"]
    assert on_node(cluster, apis[back], keys[:1]) == [rec_a]  # the window was open
