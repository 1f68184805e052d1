"""A node holding copies of a partition it does not own (a former owner's leftovers) hands
them to the owners and then drops them -- but never while an owner is away.

The copies are planted through the node API on a non-owner: two records equal to the
owners' and one ("c") newer than anything the owners hold, as a write that reached the
node while it still owned the partition. An owner is SIGKILLed first, the worst moment
for the drop: "c" reaches the owners still up, and the leftovers must survive every pass
while gossip reports the owner failed (a drop that counted only live owners would go
ahead here). Once it is restarted, every owner holds "c", the non-owner holds nothing
of the partition, and every object reads back.
"""

from __future__ import annotations

import time

import pytest

from gateway.adminclient import AdminClient, locate
from tests.harness import (
    cluster_with_env,
    metadata_placement,
    on_node,
    wait_healthy,
    wait_until,
)

BUCKET = "handoff"
ENV = {"SHOAL_SYNC_INTERVAL": "2"}
KEYS = [f"o/{BUCKET}/{k}" for k in "abc"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with cluster_with_env(tmp_path_factory.mktemp("handoff") / "data", ENV) as c:
        yield c


def test_leftover_copies_are_handed_off_then_dropped_never_while_an_owner_is_away(cluster):
    s3 = cluster.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"bytes of a")
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"bytes of b, which c will name")
    admin = AdminClient(*locate(cluster.data))
    owners, apis = metadata_placement(cluster, BUCKET, "a")
    holder = next(n for n in sorted(apis) if n not in owners)
    killed, answering = owners[0], owners[1:]

    rec_a, rec_b = on_node(cluster, apis[owners[1]], KEYS[:2])
    rec_c = {**rec_b, "key": "c", "hlc": [int(time.time() * 1000) + 1, 0, "test"]}
    cluster.kill_node(killed)
    try:
        planted = on_node(cluster, apis[holder], KEYS,
                          put=[(KEYS[0], rec_a), (KEYS[1], rec_b), (KEYS[2], rec_c)])
        assert planted == [rec_a, rec_b, rec_c]
        # Once gossip calls it failed, the killed owner is left out of the sync: only the
        # drop's own rule (every owner alive and answering) keeps the copies now.
        assert wait_until(lambda: {n["name"]: n["status"] for n in admin.status()["nodes"]}
                          [killed] == "failed", 30)
        # "c" is pushed to the owners that answer; nothing is dropped meanwhile.
        assert wait_until(lambda: all(on_node(cluster, apis[o], KEYS[2:])[0] == rec_c
                                      for o in answering), 30)
        deadline = time.monotonic() + 10  # five sync passes
        while time.monotonic() < deadline:
            assert on_node(cluster, apis[holder], KEYS) == [rec_a, rec_b, rec_c]
            time.sleep(1)
    finally:
        cluster.restart_node(killed)
    wait_healthy(cluster.endpoint, 6, timeout=60)

    assert wait_until(lambda: on_node(cluster, apis[holder], KEYS) == [None] * 3, 60)
    for owner in owners:
        assert on_node(cluster, apis[owner], KEYS) == [rec_a, rec_b, rec_c], owner
    assert s3.get_object(Bucket=BUCKET, Key="a")["Body"].read() == b"bytes of a"
    assert s3.get_object(Bucket=BUCKET, Key="c")["Body"].read() == (
        b"bytes of b, which c will name")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert listed == ["a", "b", "c"]


def test_an_owner_down_when_an_access_key_was_made_gets_it_from_its_peers(cluster):
    """Access-key records have a partition of their own; anti-entropy carries it like a
    bucket's, or an owner that missed a key would never get it, and once membership moved
    twice no owner asked might hold it."""
    admin = AdminClient(*locate(cluster.data))
    apis = {n["name"]: n["api"] for n in admin.status()["nodes"]}
    down = cluster.metadata_owners("__keys__")[0]
    cluster.kill_node(down)
    try:
        made = admin.create_key("made-while-an-owner-was-down")
    finally:
        cluster.restart_node(down)
    key = f"k/{made['access_key']}"
    assert on_node(cluster, apis[down], [key]) == [None]  # the write never reached it
    assert wait_until(lambda: on_node(cluster, apis[down], [key])[0] is not None, 60)
