"""The scrubber: a paced pass over every shard on this node, re-hashing it with BLAKE3.

Reads already verify each shard, but a shard nobody reads could rot unseen until the
day it is needed together with m others. A shard whose bytes no longer match its stored
hash is logged, listed in the report and deleted: a rotten shard is useless (every
reader refuses it), and deleting it turns it into a ``missing`` slot that repair
rebuilds from the other shards. The repairers are told through gossip: the node's
``rot`` tag (its count of rotten shards) changes, and a changed member makes every
repairer walk all its records (cluster.repair).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from cluster.pacing import Pacer
from cluster.store import CorruptShard, NodeStore

log = logging.getLogger(__name__)

PAGE = 256
REPORTED = 50  # rotten shard ids kept in the report


class Scrubber:
    def __init__(self, store: NodeStore, pacer: Pacer,
                 set_tags: Callable[[dict[str, str]], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.pacer = pacer
        self.set_tags = set_tags
        self._published = 0
        self.passes = 0
        self.rotten_total = 0
        self.rotten: list[str] = []
        self.progress: dict = {"running": False}

    def status(self) -> dict:
        return {**self.progress, "passes": self.passes, "rotten_total": self.rotten_total,
                "rotten": self.rotten[-REPORTED:], "rate": self.pacer.rate}

    async def run_pass(self) -> None:
        p = self.progress = {"running": True, "started": time.time(), "finished": None,
                             "shards_checked": 0, "bytes_checked": 0, "rotten_found": 0}
        after = ""
        try:
            while ids := await self.store.shard_ids(after, PAGE):
                for shard_id in ids:
                    size = await self._check(shard_id)
                    p["shards_checked"] += 1
                    p["bytes_checked"] += size
                    await self.pacer.spend(size)
                after = ids[-1]
                await self._publish()
        finally:
            p["running"] = False
            p["finished"] = time.time()
            self.passes += 1

    async def _publish(self) -> None:
        """Gossip the rotten count once it moved, so repair rebuilds those shards now
        rather than at its next full walk."""
        if self.set_tags is None or self.rotten_total == self._published:
            return
        try:
            await self.set_tags({"rot": str(self.rotten_total)})
            self._published = self.rotten_total
        except Exception as exc:  # the periodic full walk of repair still finds them
            log.warning("scrub: could not publish the rotten count: %r", exc)

    async def _check(self, shard_id: str) -> int:
        try:
            found = await self.store.get_shard_with_hash(shard_id)
        except CorruptShard:
            log.error("scrub: shard %s is rotten (BLAKE3 mismatch); deleted for repair",
                      shard_id)
            await self.store.delete_shards([shard_id])
            self.rotten.append(shard_id)
            del self.rotten[:-REPORTED]
            self.rotten_total += 1
            self.progress["rotten_found"] += 1
            return 0
        return 0 if found is None else len(found[0])
