"""Where records live in the metadata key space, as the background work needs to know it.

This mirrors the key layout that gateway/records.py owns (tests/unit/test_layout.py checks
that the two agree): ``b/{bucket}`` in partition ``__buckets__``; ``k/{access_key}`` in
``__keys__`` (gateway/keys.py); ``o/{bucket}/{key}``, ``u/{bucket}/{key}\\0{upload}``,
``p/{bucket}/{upload}/{part}`` and the versions ``v/{bucket}/{key}\\0{version}``
(gateway/versioning.py) in the bucket's partition. Bucket names hold no '/' and no '_',
so the partition of any key can be read off the key itself.
"""

from __future__ import annotations

BUCKETS = "__buckets__"
BUCKET_RANGE = ("b/", "b0")  # every bucket record
KEYS = "__keys__"
KEY_RANGE = ("k/", "k0")  # every access-key record
KINDS = ("o", "u", "p", "v")  # object, multipart upload, part, version: per-bucket ranges
DATA_KINDS = "opv"  # the kinds whose records name shards (blocks)


def bucket_ranges(bucket: str) -> list[tuple[str, str]]:
    """The [start, end) key ranges holding a bucket partition's records."""
    return [(f"{kind}/{bucket}/", f"{kind}/{bucket}0") for kind in KINDS]


def partition_ranges(partition: str) -> list[tuple[str, str]]:
    """The key ranges of a partition (the bucket list, the access keys, or one bucket)."""
    if partition == BUCKETS:
        return [BUCKET_RANGE]
    return [KEY_RANGE] if partition == KEYS else bucket_ranges(partition)


def partition_of(key: str) -> str | None:
    """The partition a record key belongs to; None for a key outside the layout."""
    kind, sep, rest = key.partition("/")
    if not sep:
        return None
    if kind == "b":
        return BUCKETS
    if kind == "k":
        return KEYS
    if kind in KINDS and "/" in rest:
        return rest.split("/", 1)[0]
    return None
