"""Bucket storage policies on a 6-node, 3-zone cluster: a zone loss, a node loss, refusals.

Nodes are named node-1..node-6 in zones z1, z2, z3, z1, z2, z3 (`shoal up`), so zone z1
is node-1 and node-4.
"""

from __future__ import annotations

import os

import pytest

from gateway.admincli import _status_words
from gateway.adminclient import AdminCallError
from tests.harness import error_of, wait_until
from tests.security.conftest import admin_of

MiB = 1024 * 1024


def refused(call, *args, **kwargs) -> str:  # noqa: ANN001
    with pytest.raises(AdminCallError) as info:
        call(*args, **kwargs)
    assert info.value.status == 409 or info.value.status == 400, info.value
    return info.value.message


def test_policies_survive_node_and_zone_loss_and_unsatisfiable_ones_are_refused(cluster):
    admin = admin_of(cluster)
    s3 = cluster.client()
    zonal = admin.create_bucket("zonal", "2+1", zones=3)
    assert zonal["policy"]["text"] == "ec:2+1" and zonal["policy"]["zones"] == 3
    assert admin.bucket_info("zonal")["policy"] == zonal["policy"]
    assert admin.create_bucket("pair", "replica:2")["policy"]["text"] == "replica:2"
    assert "needs 9 live storage nodes; the cluster has 6" in refused(
        admin.create_bucket, "wide", "6+3")
    assert "needs live nodes in 4 zones; the cluster has 3" in refused(
        admin.create_bucket, "spread", "4+2", zones=4)
    assert "3 shards per block: they cannot span 4 zones" in refused(
        admin.create_bucket, "narrow", "2+1", zones=4)
    assert "needs m >= 1" in refused(admin.create_bucket, "fragile", "2+0", zones=2)
    assert "at most 1 shards in one zone" in refused(
        admin.create_bucket, "tight", "4+1", zones=3)
    assert "k <= 16" in refused(admin.create_bucket, "huge", "17+1")

    bodies = {f"o{i}": os.urandom(size) for i, size in
              enumerate([10, 40_000, 300_000, 5 * MiB])}
    for key, body in bodies.items():
        s3.put_object(Bucket="zonal", Key=key, Body=body)
        s3.put_object(Bucket="pair", Key=key, Body=body)

    def all_read_back(bucket: str) -> None:
        for key, body in bodies.items():
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, (bucket, key)
        got = s3.get_object(Bucket=bucket, Key="o3", Range="bytes=4194000-4194999")
        assert got["Body"].read() == bodies["o3"][4194000:4195000]

    cluster.kill_node("node-4")  # one node of zone z1
    all_read_back("pair")
    cluster.kill_node("node-1")  # the rest of zone z1
    all_read_back("zonal")
    all_read_back("pair")

    assert wait_until(lambda: sum(n["status"] == "failed"
                                  for n in admin.status()["nodes"]) == 2, 30)
    status = admin.status()
    assert not status["healthy"]
    assert "zone z1 has no live node" in status["problems"]
    assert any(p.startswith("bucket zonal cannot take writes now") for p in status["problems"])
    # Live nodes report their disk and what they store; the killed ones cannot.
    nodes = {n["name"]: n for n in status["nodes"]}
    assert nodes["node-1"]["disk_free"] is None and nodes["node-4"]["disk_free"] is None
    live = [n for n in nodes.values() if n["status"] == "alive"]
    assert len(live) == 4
    assert all(n["disk_bytes"] >= n["disk_free"] > 0 for n in live)
    assert status["capacity"]["used_bytes"] == sum(n["used_bytes"] for n in live) >= 5 * MiB
    assert _status_words(status).count("GiB free on disk") == 4
    assert "needs live nodes in 3 zones; the cluster has 2" in refused(
        admin.create_bucket, "zonal-2", "2+1", zones=3)
    # A write that could not keep the zone guarantee is refused, not stored weakly.
    assert error_of(s3.put_object, Bucket="zonal", Key="late", Body=os.urandom(100_000))[1] == 503
    assert error_of(s3.head_object, Bucket="zonal", Key="late")[1] == 404
    s3.put_object(Bucket="pair", Key="late", Body=b"still writable")
