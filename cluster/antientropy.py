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

Tombstones: a delete is a record (``"deleted": true``) so that a copy that missed it cannot
bring the object back, and a listing walks every one (~12 µs each). An owner purges a
tombstone once it is older than ``grace`` and, right after a sync with every other owner
(all alive and answering, the member view settled), each of them holds it or has purged it
too. Purging raises the partition's *purge mark* (the newest purged tombstone's ms) in the
same batch (cluster/store.py). The mark is what keeps a purged delete deleted: a node
that lacks a key, asked for a record no newer than its mark, can only be looking at a copy
of something deleted -- it was complete (in sync with every owner) when it purged, and
every write reaches W owners -- so it refuses the record, and the node offering it drops
its copy instead of pushing it again. That is what catches a former owner returning with
stale copies, or a copy left on a non-owner; until then, quorum reads discard such a copy
by the same rule (cluster/metadata.py). A node that drops its copies of a partition
forgets the mark first: it no longer holds what the mark vouches for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson

from cluster.hlc import hlc_of, newer
from cluster.layout import BUCKETS, KEYS, partition_of, partition_ranges
from cluster.membership import Member
from cluster.metadata import MetadataReplicator, QuorumError
from cluster.nodeclient import NodeClient, NodeUnavailable
from cluster.store import NodeStore, is_tombstone
from cluster.walk import bucket_names

log = logging.getLogger(__name__)

CHUNK = 64  # local keys per compared sub-range
PAGE = 1000
PURGE_EVERY_MAX = 600.0  # seconds between purges of one partition, at most
COMPACT_AFTER = 1000  # tombstones purged from a partition in one go that call for a compaction


class AntiEntropy:
    def __init__(self, name: str, store: NodeStore, client: NodeClient,
                 meta: MetadataReplicator, members: Callable[[], list[Member]],
                 grace: float = 3600.0) -> None:
        self.name = name
        self.grace = grace  # seconds a tombstone is kept at least
        self._purged_at: dict[str, float] = {}  # partition -> monotonic time of last purge
        self._leftover: set[str] = set()  # partitions whose last purge kept some tombstones
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
            start = next(hi for lo, hi in partition_ranges(part) if lo <= key < hi)

    async def run_pass(self) -> None:
        p = self.progress = {"running": True, "started": time.time(), "finished": None,
                             "partitions": 0, "ranges_compared": 0, "ranges_differing": 0,
                             "pushed": 0, "pulled": 0, "dropped": 0, "purged": 0,
                             "errors": 0}
        # Copies are dropped only on a view that a whole pass ago was the same: just
        # after a start, gossip may not show every owner yet, and a partial view could
        # name non-owners as the owners to check.
        view = frozenset((m.name, m.status) for m in self._members())
        self._settled, self._last_view = view == self._last_view, view
        try:
            parts = await self.local_partitions()
            try:
                for part in [BUCKETS, KEYS, *await bucket_names(self.meta)]:
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
        others = [peer.api for peer in owners if peer.name != self.name]
        if not complete or not self._settled:
            return
        if not owner:
            await self.drop_handed_off(part, others)
        elif self._purge_due(part):
            await self.purge_tombstones(part, others)

    def _purge_due(self, part: str) -> bool:
        """Once after a start; then when the partition took a tombstone or the last purge
        kept some (too young, or not yet held by every owner) -- a purge reads every
        record -- and no sooner than the grace, or PURGE_EVERY_MAX, after the last."""
        last, now = self._purged_at.get(part), time.monotonic()
        if last is not None and (
                now - last < min(self.grace, PURGE_EVERY_MAX)
                or part not in self._leftover and part not in self.store.tombstoned):
            return False
        self._purged_at[part] = now
        self.store.tombstoned.discard(part)
        return True

    async def purge_tombstones(self, part: str, apis: list[str]) -> None:
        """Purge this owner's tombstones of ``part`` older than the grace that every other
        owner holds (or purged). Called right after a sync with each of them."""
        cutoff = int((time.time() - self.grace) * 1000)
        purged = await self._purge_ranges(part, apis, cutoff)
        self.progress["purged"] += purged
        if purged >= COMPACT_AFTER:
            await self.store.compact_meta(partition_ranges(part))

    async def _purge_ranges(self, part: str, apis: list[str], cutoff: int) -> int:
        purged = 0
        self._leftover.add(part)  # until a look finds nothing left behind
        left = False
        for lo, hi in partition_ranges(part):
            while True:
                page, more = await self.store.meta_scan_raw(lo, hi, PAGE)
                if not page:
                    break
                tombs = [(k.decode(), r) for k, r in map(_tombstone, page) if r is not None]
                old = {k: hlc_of(r) for k, r in tombs if r["hlc"][0] <= cutoff}
                try:
                    for api in apis:
                        old = await self._held_or_purged(api, old)
                except NodeUnavailable as exc:
                    log.info("purge of %s: tombstones kept, an owner did not answer: %s",
                             part, exc)
                    return purged
                left = left or len(old) < len(tombs)
                if old:
                    mark = max(h[0] for h in old.values())
                    purged += await self.store.meta_purge(part, list(old.items()), mark)
                if not more:
                    break
                lo = page[-1][0].decode() + "\x00"
        if not left:
            self._leftover.discard(part)
        return purged

    async def _held_or_purged(self, api: str, tombs: dict[str, tuple]
                              ) -> dict[str, tuple]:
        """The tombstones of ``tombs`` that the node at ``api`` holds at least as new, or
        lacks because it purged them (its answer gives the mark beside each absent one)."""
        if not tombs:
            return tombs
        theirs = await self.client.meta_read(api, list(tombs))
        return {k: h for (k, h), (raw, mark) in zip(tombs.items(), theirs, strict=True)
                if (raw is None and h[0] <= mark)
                or (raw is not None and hlc_of(orjson.loads(raw)) >= h)}

    async def drop_handed_off(self, part: str, apis: list[str]) -> None:
        """Drop this non-owner's copies of ``part`` that every owner holds at least as
        new. Called after a sync with every owner, all alive, pushed what they lacked."""
        await self.store.reset_purge_mark(part)
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
        part = partition_of(lo)
        # Read after the records (see _held_or_purged). Records the peer lacks at or below
        # its mark were deleted and purged there: drop them here instead of pushing --
        # except an owner's own tombstones, which its purge removes, raising its mark.
        theirs = await self.client.purge_mark(api, part) if part else 0
        mine = self.store.purge_mark(part) if part else 0
        push, stale = [], []
        for k, r in local.items():
            if k not in remote and r["hlc"][0] <= theirs:
                if not (pull and r.get("deleted")):
                    stale.append((k, hlc_of(r)))
            elif newer(r, remote.get(k)):
                push.append((k, r))
        if stale:
            self.progress["dropped"] += await self.store.meta_drop(stale)
        if push:
            await self.client.meta_put(api, push)
            self.progress["pushed"] += len(push)
        if pull:
            fetch = [(k, r) for k, r in remote.items() if newer(r, local.get(k))
                     and (k in local or r["hlc"][0] > mine)]
            if fetch:
                await self.store.meta_put(fetch)
                self.progress["pulled"] += len(fetch)


def _tombstone(item: tuple[bytes, bytes]) -> tuple[bytes, dict | None]:
    """(key, record) when the stored record is a purgeable tombstone -- not a delete marker,
    which versioning shows to clients -- else (key, None). Only tombstones are decoded."""
    key, raw = item
    if not is_tombstone(raw):
        return key, None
    record = orjson.loads(raw)
    return key, None if record.get("delete_marker") else record
