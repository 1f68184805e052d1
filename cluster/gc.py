"""Garbage collection of orphan shards on this node.

Orphans come from uploads cut off before their record was written, overwritten and
deleted objects, aborted or unused multipart parts, repair and rebalance (the old copy
of a moved shard), and rebuilds whose record update lost to a concurrent overwrite.

A pass: list every shard id on this node; then walk every live record (objects, every
version of a versioned key, and parts of multipart uploads in progress) with *strict*
quorum scans and collect the
(block, slot) pairs that a record places on this node -- copies share blocks, so a
shard is kept while any record names it; a shard of block B slot i held here while
the records say slot i lives on another node is an orphan. An unreferenced shard is a
*candidate*, remembered with the time it was first seen unreferenced; it is deleted by
a later pass only if that pass's record walk *started* at least ``grace`` seconds after
the candidate was first seen, and it is still unreferenced.

Safety: a writer stores shards first and their record after (uploads, parts, repair,
rebalance). Let a shard be written at t_w and its record acknowledged at t_r. The shard
is first seen unreferenced at t_c > t_w; it is deleted only after a walk that started at
t_s >= t_c + grace > t_w + grace. A quorum walk sees every record acknowledged before it
started, so if t_r < t_w + grace the walk sees the record and the shard is kept. Hence
no shard is deleted whose writer finishes within ``grace`` of writing it: the grace
period must exceed the longest single upload (a part, for multipart) -- default 6 h. A
walk that cannot reach a quorum of some partition's owners deletes nothing. Candidates
live in memory: a restarted node starts over, which only delays collection.

Each pass ends by asking the store to rewrite its blob files if deleted shards (from this
pass, the scrubber or the gateways) have come to a quarter of their bytes.
"""

from __future__ import annotations

import logging
import time

from cluster.layout import DATA_KINDS
from cluster.metadata import MetadataReplicator, QuorumError
from cluster.nodeclient import NodeUnavailable
from cluster.store import NodeStore
from cluster.walk import bucket_names, live_records

log = logging.getLogger(__name__)

DEFAULT_GRACE = 6 * 3600.0
PAGE = 5000


class Collector:
    def __init__(self, name: str, store: NodeStore, meta: MetadataReplicator,
                 grace: float = DEFAULT_GRACE) -> None:
        self.name = name
        self.store = store
        self.meta = meta
        self.grace = grace
        self.candidates: dict[str, float] = {}  # shard id -> when first seen unreferenced
        self.passes = 0
        self.deleted_total = 0
        self.progress: dict = {"running": False}

    def status(self) -> dict:
        return {**self.progress, "passes": self.passes, "grace": self.grace,
                "candidates": len(self.candidates), "deleted_total": self.deleted_total}

    async def referenced(self) -> set[str]:
        """Shard ids that some live record places on this node (strict quorum walk)."""
        refs: set[str] = set()
        for bucket in await bucket_names(self.meta, strict=True):
            async for _, rec in live_records(self.meta, bucket, DATA_KINDS, strict=True):
                for block in rec.get("blocks") or []:
                    for i, ref in enumerate(block["shards"]):
                        if ref is not None and ref[0] == self.name:
                            refs.add(f"{block['id']}.{i}")
        return refs

    async def run_pass(self) -> None:
        p = self.progress = {"running": True, "started": time.time(), "finished": None,
                             "shards": 0, "unreferenced": 0, "deleted": 0, "error": None}
        try:
            local: list[str] = []
            after = ""
            while ids := await self.store.shard_ids(after, PAGE):
                local.extend(ids)
                after = ids[-1]
            p["shards"] = len(local)
            walk_started = time.monotonic()
            try:
                refs = await self.referenced()
            except (QuorumError, NodeUnavailable) as exc:
                p["error"] = f"record walk incomplete, nothing deleted: {exc}"
                return
            doomed = []
            still: dict[str, float] = {}
            for shard_id in local:
                if shard_id in refs:
                    continue
                first = self.candidates.get(shard_id, time.monotonic())
                if walk_started - first >= self.grace:
                    doomed.append(shard_id)
                else:
                    still[shard_id] = first
            self.candidates = still
            p["unreferenced"] = len(still) + len(doomed)
            for i in range(0, len(doomed), 500):
                await self.store.delete_shards(doomed[i:i + 500])
            p["deleted"] = len(doomed)
            self.deleted_total += len(doomed)
            if doomed:
                log.info("gc: deleted %d orphan shards", len(doomed))
            # Deleting frees no disk by itself: shard bytes sit in blob files until those
            # are rewritten (any delete counts, not only this pass's).
            p["blob_files"] = await self.store.reclaim_blob_space()
        finally:
            p["running"] = False
            p["finished"] = time.time()
            self.passes += 1
