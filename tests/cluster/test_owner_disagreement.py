"""Metadata owners that disagree: a read and a listing return the newest copy, whichever
owner holds it, and the read brings the stale owner up to date (read repair)."""

from __future__ import annotations

from cluster.layout import partition_of
from gateway.adminclient import AdminClient, locate
from tests.harness import metadata_placement, on_node, wait_until

BUCKET = "owners"


def test_a_newer_record_on_the_second_owner_wins_the_read(cluster):
    """Only the second owner asked holds the newest record of ``a`` (as after a write
    whose other acknowledgements were lost); the first owner's copy is older. The read
    must return the newer record's bytes, not the first answer's."""
    s3 = cluster.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="a", Body=b"old bytes of a")
    s3.put_object(Bucket=BUCKET, Key="b", Body=b"the bytes that become a")
    admin = AdminClient(*locate(cluster.data))
    owners, apis = metadata_placement(cluster, BUCKET, "a")  # reads ask the first two
    key_a, key_b = f"o/{BUCKET}/a", f"o/{BUCKET}/b"
    assert partition_of(key_a) == BUCKET

    rec_a, rec_b = on_node(cluster, apis[owners[0]], [key_a, key_b])
    newest = {**rec_b, "key": "a", "hlc": [max(rec_a["hlc"][0], rec_b["hlc"][0]) + 1, 0, "test"]}
    on_node(cluster, apis[owners[1]], [], put=[(key_a, newest)])
    # A listing asks the same two owners: their answers differ, so they are merged.
    listed = {o["Key"]: o for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert listed["a"]["Size"] == len(b"the bytes that become a")
    assert listed["a"]["ETag"] == listed["b"]["ETag"] and listed["b"]["Size"] == listed["a"]["Size"]
    assert s3.get_object(Bucket=BUCKET, Key="a")["Body"].read() == b"the bytes that become a"
    assert wait_until(lambda: admin.object_health(BUCKET, "a")["metadata"][owners[0]]
                      == "current", 30)


def test_a_listing_settles_keys_that_only_some_owners_show(cluster):
    """Owners leave tombstones out of listing scans, so a key one owner shows and another
    does not is settled by a quorum read: "x", deleted on the second owner only (newer
    than the first owner's live copy), is hidden; "y", written to the second owner only,
    is shown. Tombstones every owner holds, between live keys, are skipped even one key
    per page."""
    bucket = "owners-live"
    s3 = cluster.client()
    s3.create_bucket(Bucket=bucket)
    for name in ["k0", "x", *(f"m{i}" for i in range(8)), "z"]:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
    for i in range(8):
        s3.delete_object(Bucket=bucket, Key=f"m{i}")
    owners, apis = metadata_placement(cluster, bucket, "x")  # reads ask the first two
    key_x, key_y = f"o/{bucket}/x", f"o/{bucket}/y"

    (rec_x,) = on_node(cluster, apis[owners[0]], [key_x])
    later = [rec_x["hlc"][0] + 1, 0, "test"]
    on_node(cluster, apis[owners[1]], [], put=[
        (key_x, {"bucket": bucket, "key": "x", "hlc": later, "deleted": True, "v": 1}),
        (key_y, {**rec_x, "key": "y", "hlc": later})])
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k0", "y", "z"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                          PaginationConfig={"PageSize": 1})
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == ["k0", "y", "z"]
