"""Buckets and object records on top of the replicated metadata.

Every read here is a quorum read (strong read-after-write, listings included); every
write is stamped by the gateway's hybrid logical clock and acknowledged at W owners.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from cluster.metadata import QuorumError
from gateway.backend import Backend
from gateway.errors import S3Error
from gateway.records import (
    BUCKETS,
    BucketRecord,
    ObjectRecord,
    bucket_key,
    object_key,
    object_prefix,
    prefix_end,
)

SCAN_PAGE = 1000
BUCKET_TTL = 1.0  # seconds a gateway trusts a bucket record it read (positive only)


def unavailable(err: QuorumError) -> S3Error:
    return S3Error("ServiceUnavailable", f"Metadata is unavailable: {err}")


class Catalog:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.meta = backend.meta
        # Every object request needs its bucket's record. Existing buckets are trusted
        # for BUCKET_TTL, so a bucket deleted through another gateway may still take a
        # request for up to that long (S3 documents bucket deletion as eventually
        # consistent too); this gateway's own create/delete updates it at once.
        self._buckets: dict[str, tuple[float, BucketRecord]] = {}

    def stamp(self) -> list:
        return self.backend.clock.now()

    async def put(self, partition: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        try:
            await self.meta.put(partition, items)
        except QuorumError as err:
            raise unavailable(err) from None

    async def get(self, partition: str, key: str) -> dict[str, Any] | None:
        try:
            rec = await self.meta.get(partition, key)
        except QuorumError as err:
            raise unavailable(err) from None
        if rec is not None:
            self.backend.clock.observe(rec["hlc"])
        return rec

    async def scan(
        self, partition: str, start: str, end: str, limit: int = SCAN_PAGE,
        fields: list[str] | None = None,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Live (non-tombstone) records in [start, end), in key order, page by page;
        ``fields``: only those fields of each record."""
        while True:
            try:
                items, resume = await self.meta.scan(partition, start, end, limit,
                                                     fields=fields)
            except QuorumError as err:
                raise unavailable(err) from None
            for key, rec in items:
                if not rec.get("deleted"):
                    yield key, rec
            if resume is None:
                return
            start = resume

    # Buckets -----------------------------------------------------------------

    async def bucket(self, name: str) -> BucketRecord:
        cached = self._buckets.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        rec = await self.get(BUCKETS, bucket_key(name))
        if rec is None or rec.get("deleted"):
            self._buckets.pop(name, None)
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", BucketName=name)
        found = BucketRecord.from_dict(rec)
        self._buckets[name] = (time.monotonic() + BUCKET_TTL, found)
        return found

    async def create_bucket(self, name: str, policy: dict[str, Any], owner: str) -> BucketRecord:
        self._buckets.pop(name, None)
        existing = await self.get(BUCKETS, bucket_key(name))
        if existing is not None and not existing.get("deleted"):
            raise S3Error(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it.",
                BucketName=name,
            )
        rec = BucketRecord(name=name, hlc=self.stamp(), created=time.time(), policy=policy,
                           owner=owner)
        await self.put(BUCKETS, [(bucket_key(name), rec.to_dict())])
        return rec

    async def update_bucket(self, name: str, **fields: Any) -> BucketRecord:
        """Set ``fields`` of a bucket's record: a quorum read, then a stamped write (last
        writer wins between concurrent changes). This gateway's bucket cache takes the new
        record at once, so its next request sees the change."""
        self._buckets.pop(name, None)
        rec = await self.bucket(name)
        for field_name, value in fields.items():
            if not hasattr(rec, field_name):
                raise AttributeError(f"bucket records have no field {field_name!r}")
            setattr(rec, field_name, value)
        rec.hlc = self.stamp()
        await self.put(BUCKETS, [(bucket_key(name), rec.to_dict())])
        self._buckets[name] = (time.monotonic() + BUCKET_TTL, rec)
        return rec

    async def delete_bucket(self, name: str) -> None:
        await self.bucket(name)
        for prefix in (object_prefix(name), f"u/{name}/", f"v/{name}/"):  # v/: versions
            async for _ in self.scan(name, prefix, prefix_end(prefix), limit=10):
                raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty",
                              BucketName=name)
        tomb = {"name": name, "hlc": self.stamp(), "deleted": True, "v": 1}
        self._buckets.pop(name, None)
        await self.put(BUCKETS, [(bucket_key(name), tomb)])

    async def buckets(self) -> list[BucketRecord]:
        return [BucketRecord.from_dict(rec) async for _, rec in self.scan(BUCKETS, "b/", "b0")]

    # Objects -----------------------------------------------------------------

    async def object(self, bucket: str, key: str) -> ObjectRecord:
        rec = await self.get(bucket, object_key(bucket, key))
        if rec is None or rec.get("deleted"):
            raise S3Error("NoSuchKey", "The specified key does not exist.", Key=key)
        return ObjectRecord.from_dict(rec)

    async def put_object(self, rec: ObjectRecord, extra: list | None = None) -> None:
        """Make ``rec`` the current version; ``extra`` items commit in the same batch."""
        items = [(object_key(rec.bucket, rec.key), rec.to_dict()), *(extra or [])]
        await self.put(rec.bucket, items)

    async def delete_object(self, bucket: str, key: str) -> None:
        tomb = {"bucket": bucket, "key": key, "hlc": self.stamp(), "deleted": True, "v": 1}
        await self.put(bucket, [(object_key(bucket, key), tomb)])

    def objects(self, bucket: str, start_key: str, end_key: str | None,
                page: int = SCAN_PAGE, fields: list[str] | None = None
                ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Live object records with start_key <= key < end_key (None: to the end), read
        ``page`` records per quorum scan; ``fields``: only those fields of each."""
        prefix = object_prefix(bucket)
        end = prefix + end_key if end_key is not None else prefix_end(prefix)
        return self.scan(bucket, prefix + start_key, end, page, fields)
