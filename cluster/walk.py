"""Walking the replicated metadata from a background task: buckets, then their records.

Every page is a quorum scan (``MetadataReplicator.scan``), so a walk sees every record
acknowledged before it started. ``strict`` walks refuse degraded pages (QuorumError):
garbage collection acts on what it does *not* see, so it must never work from a partial
view; repair acts only on what it sees, so a degraded page is good enough for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from cluster.layout import BUCKET_RANGE, BUCKETS, bucket_ranges
from cluster.metadata import MetadataReplicator, Record

PAGE = 500


async def scan_range(meta: MetadataReplicator, partition: str, start: str, end: str,
                     strict: bool = False) -> AsyncIterator[tuple[str, Record]]:
    """Every record (tombstones included) in [start, end) of a partition, in key order."""
    while True:
        items, resume = await meta.scan(partition, start, end, PAGE, strict=strict)
        for item in items:
            yield item
        if resume is None:
            return
        start = resume


async def bucket_names(meta: MetadataReplicator, strict: bool = False) -> list[str]:
    """Names of the buckets that exist (not tombstoned)."""
    return [key[len(BUCKET_RANGE[0]):] async for key, rec in
            scan_range(meta, BUCKETS, *BUCKET_RANGE, strict=strict) if not rec.get("deleted")]


async def live_records(meta: MetadataReplicator, bucket: str, kinds: str = "oupv",
                       strict: bool = False) -> AsyncIterator[tuple[str, Record]]:
    """Live records of a bucket's partition, ranges in ``kinds`` (o objects, u uploads,
    p parts, v versions) only."""
    for start, end in bucket_ranges(bucket):
        if start[0] in kinds:
            async for key, rec in scan_range(meta, bucket, start, end, strict):
                if not rec.get("deleted"):
                    yield key, rec
