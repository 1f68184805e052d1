"""Anti-entropy: metadata partitions converge between owners, and move to new owners.

Each node, each pass, syncs every partition it holds a copy of *or* owns (owners: the top
R by rendezvous hash over nodes that have not left) with each of that partition's other
current owners that is alive:

1. compare one digest of each of the partition's key ranges (``/meta/digests``: a hash
   of every key and its record's hlc) -- equal ranges cost one small call each side;
2. for a range that differs, cut it at every ``CHUNK``-th local key and compare the
   sub-range digests, so only sub-ranges that differ are exchanged;
3. exchange a differing sub-range: records the peer lacks or holds older are pushed to
   it; when this node is itself an owner, records the peer holds newer are pulled.
   Both sides apply last-writer-wins (``store.newer``), so the order of exchanges and
   their repetition never matter, and a sync racing a client write cannot undo it.

What that gives: a node that was down catches up on the writes it missed (its peers
push, and it pulls, when either runs a pass); a node that joins and becomes an owner
pulls its partitions; a node that stops being an owner (another joined, or it is being
drained) pushes what it holds to the new owners -- *handoff* -- before anything is
dropped.

A node that holds copies of a partition it does not own drops them once every owner is
alive, a sync with each has just finished, each owner holds every one of its records at
least as new (asked by key and clock), and its view of the members is the one it had a
pass before; a record written meanwhile is kept (``store.meta_drop`` deletes only the
clock it was shown). Until then it keeps syncing the partition each pass, which cost
CPU for as long as the copies stayed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from cluster.hlc import hlc_of, newer
from cluster.layout import BUCKET_RANGE, BUCKETS, partition_of, partition_ranges
from cluster.membership import Member
from cluster.metadata import MetadataReplicator, QuorumError
from cluster.nodeclient import NodeClient, NodeUnavailable
from cluster.store import NodeStore
from cluster.walk import bucket_names

log = logging.getLogger(__name__)

CHUNK = 64  # local keys per compared sub-range
PAGE = 1000


class AntiEntropy:
    def __init__(self, name: str, store: NodeStore, client: NodeClient,
                 meta: MetadataReplicator, members: Callable[[], list[Member]]) -> None:
        self.name = name
        self.store = store
        self.client = client
        self.meta = meta
        self._members = members
        self.passes = 0
        self.progress: dict = {"running": False}
        self._last_view: frozenset[tuple[str, str]] = frozenset()
        self._settled = False

    def status(self) -> dict:
        return {**self.progress, "passes": self.passes}

    async def local_partitions(self) -> set[str]:
        """Partitions this node holds any record of, found by skipping range to range."""
        found: set[str] = set()
        start = ""
        while True:
            items, _ = await self.store.meta_scan(start, "", 1)
            if not items:
                return found
            key = items[0][0]
            part = partition_of(key)
            if part is None:
                start = key + "\x00"
                continue
            found.add(part)
            start = BUCKET_RANGE[1] if part == BUCKETS else f"{key[0]}/{part}0"

    async def run_pass(self) -> None:
        p = self.progress = {"running": True, "started": time.time(), "finished": None,
                             "partitions": 0, "ranges_compared": 0, "ranges_differing": 0,
                             "pushed": 0, "pulled": 0, "dropped": 0, "errors": 0}
        # Copies are dropped only on a view that a whole pass ago was the same: just
        # after a start, gossip may not show every owner yet, and a partial view could
        # name non-owners as the owners to check.
        view = frozenset((m.name, m.status) for m in self._members())
        self._settled, self._last_view = view == self._last_view, view
        try:
            parts = await self.local_partitions()
            try:
                for part in [BUCKETS, *await bucket_names(self.meta)]:
                    if any(m.name == self.name for m in self.meta.owners(part)):
                        parts.add(part)
            except QuorumError as exc:
                log.warning("sync: bucket list unavailable: %s", exc)
            p["partitions"] = len(parts)
            for part in sorted(parts):
                await self.sync_partition(part)
        finally:
            p["running"] = False
            p["finished"] = time.time()
            self.passes += 1

    async def sync_partition(self, part: str) -> None:
        try:
            owners = self.meta.owners(part)
        except QuorumError:
            return
        owner = any(m.name == self.name for m in owners)
        complete = True
        for peer in owners:
            if peer.name == self.name:
                continue
            if peer.status != "alive" or not peer.api:
                complete = False
                continue
            for lo, hi in partition_ranges(part):
                try:
                    await self.sync_range(peer.api, lo, hi, pull=owner)
                except NodeUnavailable as exc:
                    self.progress["errors"] += 1
                    complete = False
                    log.info("sync of %s with %s: %s", part, peer.name, exc)
                    break
        if not owner and complete and self._settled:
            await self.drop_handed_off(part, [peer.api for peer in owners])

    async def drop_handed_off(self, part: str, apis: list[str]) -> None:
        """Drop this non-owner's copies of ``part`` that every owner holds at least as
        new. Called after a sync with every owner, all alive, pushed what they lacked."""
        for lo, hi in partition_ranges(part):
            while True:
                local, more = await self.store.meta_scan(lo, hi, PAGE)
                if not local:
                    break
                end = local[-1][0] + "\x00"  # this page's key range, asked of each owner
                held = {k: hlc_of(r) for k, r in local}
                try:
                    for api in apis:
                        theirs = await self._remote(api, lo, end, fields=[])
                        held = {k: h for k, h in held.items()
                                if k in theirs and hlc_of(theirs[k]) >= h}
                except NodeUnavailable as exc:
                    log.info("sync of %s: copies kept, an owner did not answer: %s", part, exc)
                    return
                self.progress["dropped"] += await self.store.meta_drop(list(held.items()))
                if not more:
                    break
                lo = end

    async def sync_range(self, api: str, lo: str, hi: str, pull: bool) -> None:
        self.progress["ranges_compared"] += 1
        if await self.store.meta_digests([lo, hi]) == await self.client.meta_digests(
                api, [lo, hi]):
            return
        self.progress["ranges_differing"] += 1
        bounds = [lo, *await self.store.meta_cuts(lo, hi, CHUNK), hi]
        mine = await self.store.meta_digests(bounds)
        theirs = await self.client.meta_digests(api, bounds)
        for a, b, x, y in zip(bounds, bounds[1:], mine, theirs, strict=False):
            if x != y:
                await self._exchange(api, a, b, pull)

    async def _local(self, lo: str, hi: str) -> list[tuple[str, dict]]:
        out: list[tuple[str, dict]] = []
        while True:
            items, more = await self.store.meta_scan(lo, hi, PAGE)
            out.extend(items)
            if not more or not items:
                return out
            lo = items[-1][0] + "\x00"

    async def _remote(self, api: str, lo: str, hi: str,
                      fields: list[str] | None = None) -> dict[str, dict]:
        out: dict[str, dict] = {}
        while True:
            items, more = await self.client.meta_scan(api, lo, hi, PAGE, summary=False,
                                                      fields=fields)
            out.update(items)
            if not more or not items:
                return out
            lo = items[-1][0] + "\x00"

    async def _exchange(self, api: str, lo: str, hi: str, pull: bool) -> None:
        local = dict(await self._local(lo, hi))
        remote = await self._remote(api, lo, hi)
        push = [(k, r) for k, r in local.items() if newer(r, remote.get(k))]
        if push:
            await self.client.meta_put(api, push)
            self.progress["pushed"] += len(push)
        if pull:
            fetch = [(k, r) for k, r in remote.items() if newer(r, local.get(k))]
            if fetch:
                await self.store.meta_put(fetch)
                self.progress["pulled"] += len(fetch)
