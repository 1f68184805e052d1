"""cluster/layout.py mirrors the key layout gateway/records.py owns: they must agree."""

from __future__ import annotations

from cluster.layout import BUCKET_RANGE, BUCKETS, bucket_ranges, partition_of, partition_ranges
from gateway import keys as access_keys
from gateway import records, versioning


def inside(key: str, ranges: list[tuple[str, str]]) -> bool:
    return any(lo <= key < hi for lo, hi in ranges)


def test_every_record_key_falls_in_its_partition_ranges():
    keys = {
        records.bucket_key("photos"): records.BUCKETS,
        records.object_key("photos", "a/b/c.jpg"): "photos",
        records.upload_key("photos", "big", "u1"): "photos",
        records.part_key("photos", "u1", 7): "photos",
        versioning.version_key("photos", "a/b/c.jpg", "0123abcd"): "photos",
        access_keys.key_key("AKIAEXAMPLE"): access_keys.KEYS,
    }
    assert BUCKETS == records.BUCKETS
    for key, partition in keys.items():
        assert partition_of(key) == partition
        assert inside(key, partition_ranges(partition))
    assert BUCKET_RANGE == (records.bucket_key(""), records.prefix_end(records.bucket_key("")))


def test_ranges_of_one_bucket_exclude_a_bucket_sharing_its_prefix():
    other = records.object_key("photos2", "x")
    assert not inside(other, bucket_ranges("photos"))
    assert partition_of("junk") is None
