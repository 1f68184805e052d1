"""The repairer: brings every block back to full redundancy, paced.

Where it runs: in every storage node, each walking only the partitions (buckets) whose
first *alive* metadata owner it is. So exactly one process normally repairs a partition
(no coordination needed, and the work spreads with the partitions); the walk reads
records from the owners it is itself one of; and repair keeps going with any number of
gateways, including none. When membership views disagree for a moment, two nodes may
repair the same record: harmless, see "record update" below.

A pass, per partition it leads: read the bucket's object records and in-progress
multipart parts (quorum scans); probe every block's shards (one batched existence and
hash check per node, see cluster.shardhealth); for each block with slots to repair
(``empty``, ``missing``, ``corrupt``, ``doubled``, ``lost`` -- a node that left or stayed
failed past the deadline -- or a zone spread to widen) fetch k good shards, decode,
re-encode, and write the needed shards to new distinct nodes, least-used zone first.
Slots on a node that is down but within the deadline are left alone. A slot on a
*draining* node (`shoal node drain`) is copied as is to its new node, no decoding; new
homes keep a zoned bucket's promise (at most m shards per zone).

Rebalance (`shoal rebalance`, a pass of a Repairer made with ``rebalance=True``): a
block that is otherwise at full redundancy but whose node *set* is not the one placement
picks on the current members has the shards on the wrong nodes copied to the right ones
(cluster.shardhealth.misplaced) -- the paced move that evens out old data after a join.

Record update: after the shards are durable, the record is re-read by quorum and
rewritten only if its hlc is unchanged (else a client overwrote or deleted it: skip; the
new shards become orphans for the garbage collector). The rewrite's stamp is the old
stamp with ``~r`` appended to its origin: it orders after the record it repairs and
before every later write (whose (ms, logical) is larger), so even an overwrite racing
between the re-read and the write wins on every replica. Old copies are never deleted
here (a copy of the object may share the block): the garbage collector removes shards
that no live record references.

Pacing: bytes read and written by rebuilds go through a ``Pacer`` (MB/s limit).

What a pass probes. Probing every shard of every record each minute made an idle node
spend most of its CPU on repair. Shards only need rebuilding after something happened,
so a *full* pass (every record of every partition it leads) runs only when:

* the node view changed since the last full pass: a member's status, drain flag or
  ``rot`` count (a scrubber deleted rotten shards), or a down node passed the deadline;
* an operator or a drain asked (``run_now``), or it is the node's first pass;
* ``full_every`` seconds passed (a safety net, default an hour).

Otherwise a pass probes only the records this node took in since the last pass
(``MetaChanges``: new objects, perhaps written while a node refused a shard; up to
READ_KEYS_UP_TO of them are read by key, more are picked out of a scan), and whole
partitions whose last walk left work behind (blocks waiting, unrepairable, errors).
Rebalance passes are always full.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Callable

from cluster.changes import MetaChanges
from cluster.layout import DATA_KINDS, bucket_ranges
from cluster.membership import Member
from cluster.metadata import MetadataReplicator, QuorumError, writable_candidates
from cluster.nodeauth import content_hash_async
from cluster.nodeclient import NodeClient, NodeUnavailable, ShardMissing
from cluster.pacing import Pacer
from cluster.shardhealth import (
    BlockHealth,
    FailureClock,
    SlotHealth,
    assess_block,
    misplaced,
    pick_targets,
    probe_block,
)
from cluster.walk import bucket_names, live_records
from placement.codec import NotEnoughShards, codec_for, shard_hash
from placement.policy import StoragePolicy

log = logging.getLogger(__name__)

HASH_CHARS = 32  # hex chars of a shard hash kept in records (gateway/blockstore.py)
PARALLEL = 4  # records repaired at once per partition walk
READ_KEYS_UP_TO = 2000  # more changed keys than this: scan the partition instead
# Progress counters that mean a partition's walk left something for the next pass.
UNFINISHED = ("blocks_waiting", "blocks_unrepairable", "blocks_no_target",
              "records_skipped", "errors")


def _rebuild(policy: StoragePolicy, shards: dict[int, bytes], size: int
             ) -> list[tuple[bytes, str]]:
    codec = codec_for(policy)
    block = codec.decode(shards, size)
    return [(s, shard_hash(s)) for s in codec.encode(block)]


class Repairer:
    def __init__(self, name: str, client: NodeClient, meta: MetadataReplicator,
                 members: Callable[[], list[Member]], failures: FailureClock,
                 pacer: Pacer, rebalance: bool = False, changes: MetaChanges | None = None,
                 full_every: float = 3600.0) -> None:
        """``changes``: the node store's change log; without it every pass is full."""
        self.name = name
        self.rebalance = rebalance
        self.changes = changes
        self.full_every = full_every
        self._full_view: tuple | None = None  # the node view of the last full pass
        self._full_at = 0.0  # time.monotonic() of the last full pass
        self._full_asked = True
        self._unfinished: set[str] = set()  # partitions to walk whole next pass
        self.client = client
        self.meta = meta
        self._members = members
        self.failures = failures
        self.pacer = pacer
        self.passes = 0
        self.progress: dict = {"running": False}
        self.totals = {"slots_repaired_total": 0, "bytes_written_total": 0}

    def status(self) -> dict:
        return {**self.progress, **self.totals, "passes": self.passes,
                "deadline": self.failures.deadline, "rate": self.pacer.rate}

    def leads(self, partition: str) -> bool:
        """True when this node is the first alive owner of the partition."""
        try:
            owners = self.meta.owners(partition)
        except QuorumError:
            return False
        alive = [m for m in owners if m.status == "alive"]
        return bool(alive) and alive[0].name == self.name

    def ask_full(self) -> None:
        """Make the next pass probe every record."""
        self._full_asked = True

    def _view(self) -> tuple:
        members = [m for m in self._members() if m.role == "node"]
        self.failures.observe(members)
        return tuple(sorted((m.name, m.status, m.draining, m.rot, self.failures.lost(m))
                            for m in members))

    async def run_pass(self) -> None:
        view = self._view()
        changed, overflowed = self.changes.take() if self.changes else ({}, set())
        full = (self.changes is None or self._full_asked or view != self._full_view
                or time.monotonic() - self._full_at >= self.full_every)
        self._full_asked = False
        p = self.progress = {
            "running": True, "started": time.time(), "finished": None, "full": full,
            "partitions": 0, "partitions_done": 0, "partitions_unchanged": 0,
            "records_checked": 0, "blocks_checked": 0,
            "blocks_repaired": 0, "slots_repaired": 0, "slots_moved": 0, "bytes_written": 0,
            "blocks_waiting": 0, "blocks_unrepairable": 0, "blocks_no_target": 0, "records_skipped": 0, "errors": 0}
        looked = False  # at every change taken above
        try:
            try:
                mine = [b for b in await bucket_names(self.meta) if self.leads(b)]
            except QuorumError as exc:
                p["errors"] += 1
                log.info("repair: bucket list unavailable: %s", exc)
                return
            p["partitions"] = len(mine)
            for bucket in mine:
                if full or bucket in self._unfinished or bucket in overflowed:
                    await self._walk_partition(bucket, None)
                elif bucket in changed:
                    await self._walk_partition(bucket, changed[bucket])
                else:
                    p["partitions_unchanged"] += 1
                p["partitions_done"] += 1
            if full:
                self._full_view, self._full_at = view, time.monotonic()
            looked = True
        finally:
            if not looked:  # a pass cut short by any error: the next one walks everything
                self._full_asked = True
            p["running"] = False
            p["finished"] = time.time()
            self.passes += 1

    async def _walk_partition(self, bucket: str, only: set[str] | None) -> None:
        """Walk one partition (``only`` these keys, if given) and remember whether it
        left work behind."""
        p = self.progress
        before = [p[c] for c in UNFINISHED]
        try:
            await self._walk(bucket, only)
        except QuorumError as exc:
            p["errors"] += 1
            log.warning("repair of %s stopped: %s", bucket, exc)
        if [p[c] for c in UNFINISHED] != before:
            self._unfinished.add(bucket)
        else:
            self._unfinished.discard(bucket)

    async def _walk(self, bucket: str, only: set[str] | None = None) -> None:
        """Repair the bucket's records (``only`` these keys, if given), ``PARALLEL`` at a
        time: one record's repair waits on shard reads and writes, so overlapping a few
        keeps the nodes busy."""
        policies = {rec.get("upload_id"): rec.get("policy")
                    async for _, rec in live_records(self.meta, bucket, "u")}
        running: set[asyncio.Future] = set()
        async for key, rec in self._records(bucket, only):
            policy = rec.get("policy") or policies.get(rec.get("upload_id"))
            if not rec.get("blocks") or not policy:
                continue
            if len(running) >= PARALLEL:
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running.add(asyncio.ensure_future(self._repair_one(bucket, key, rec, policy)))
        await asyncio.gather(*running)

    async def _records(self, bucket: str, only: set[str] | None
                       ) -> AsyncIterator[tuple[str, dict]]:
        """The partition's live records that name shards: all of them, or those of the
        keys in ``only``. A few changed keys are read one by one (quorum reads), so a
        large bucket that takes a write a minute is not scanned whole every pass."""
        if only is not None and len(only) <= READ_KEYS_UP_TO:
            for key in sorted(only):
                if key[:1] in DATA_KINDS:
                    rec = await self.meta.get(bucket, key)
                    if rec is not None and not rec.get("deleted"):
                        yield key, rec
            return
        for start, _ in bucket_ranges(bucket):
            if start[0] in DATA_KINDS:
                async for key, rec in live_records(self.meta, bucket, start[0]):
                    if only is None or key in only:
                        yield key, rec

    async def _repair_one(self, bucket: str, key: str, rec: dict, policy: dict) -> None:
        self.progress["records_checked"] += 1
        try:
            await self.repair_record(bucket, key, rec, StoragePolicy.from_dict(policy))
        except (NodeUnavailable, QuorumError, ValueError) as exc:
            self.progress["errors"] += 1
            log.warning("repair of %s failed: %r", key, exc)

    async def repair_record(self, partition: str, key: str, rec: dict,
                            policy: StoragePolicy) -> None:
        members = {m.name: m for m in self._members() if m.role == "node"}
        self.failures.observe(members.values())
        changes: dict[int, dict[int, list]] = {}
        for bi, block in enumerate(rec["blocks"]):
            self.progress["blocks_checked"] += 1
            probed = await probe_block(self.client, members, block)
            health = assess_block(block, members, probed, self.failures.lost)
            if any(s.state == "down" for s in health.slots):
                self.progress["blocks_waiting"] += 1
            fixed: dict[int, list] = {}
            if health.repair:
                fixed = await self._rebuild_block(block, health, policy, members)
            elif self.rebalance and health.full:
                placeable = [m for m in members.values() if m.status != "left"
                             and not m.draining and not self.failures.lost(m)]
                moves = misplaced(block["id"], health.slots, policy, placeable)
                fixed = await self._copy_slots(block, health, moves, members)
            if fixed:
                changes[bi] = fixed
        if changes:
            await self._update_record(partition, key, rec["hlc"], changes)

    async def _rebuild_block(self, block: dict, health: BlockHealth, policy: StoragePolicy,
                             members: dict[str, Member]) -> dict[int, list]:
        """New homes for the slots in ``health.repair``: a draining node's shard is copied
        as is; every other slot is rebuilt from k good shards."""
        good = [s for s in health.slots if s.state == "ok" and s.slot not in health.repair]
        keep = [s.node for s in good if s.node]
        writable = writable_candidates(members.values(), self.client)
        cap = policy.m if policy.zones > 1 else None
        targets = pick_targets(block["id"], keep, writable, len(health.repair), cap)
        if not targets:  # every live node already holds a shard: nothing would improve
            self.progress["blocks_no_target"] += 1
            return {}
        plan = [(slot, members[t.name]) for slot, t in zip(health.repair, targets, strict=False)]
        copies = [(slot, t) for slot, t in plan if health.slots[slot].state == "draining"]
        fixed = await self._copy_slots(block, health, copies, members)
        rest = [(slot, t) for slot, t in plan if slot not in fixed]
        if rest:
            fixed.update(await self._decode_slots(block, good, rest, policy, members))
        return fixed

    async def _copy_slots(self, block: dict, health: BlockHealth,
                          moves: list[tuple[int, Member]], members: dict[str, Member]
                          ) -> dict[int, list]:
        """Copy each slot's shard, unchanged, from its node to the new one (no decoding)."""
        fixed: dict[int, list] = {}
        for slot, target in moves:
            source = members.get(health.slots[slot].node or "")
            shard_id = f"{block['id']}.{slot}"
            if source is None:
                continue
            try:
                data = await self.client.get_shard(source.api, shard_id, health.slots[slot].hash)
                digest = await content_hash_async(data)
                await self.client.put_shard(target.api, shard_id, data, digest)
            except (NodeUnavailable, ShardMissing):
                continue
            fixed[slot] = [target.name, digest[:HASH_CHARS]]
            self.progress["slots_moved"] += 1
            await self._spent(2 * len(data))
        return fixed

    async def _decode_slots(self, block: dict, good: list[SlotHealth],
                            plan: list[tuple[int, Member]], policy: StoragePolicy,
                            members: dict[str, Member]) -> dict[int, list]:
        """Rebuild the planned slots from any k good shards (data shards first)."""
        got: dict[int, bytes] = {}
        for s in sorted(good, key=lambda s: s.slot):  # data shards first: cheapest decode
            if len(got) >= policy.k:
                break
            with contextlib.suppress(NodeUnavailable, ShardMissing):
                got[s.slot] = await self.client.get_shard(
                    members[s.node].api, f"{block['id']}.{s.slot}", s.hash)
        if len(got) < policy.k:
            self.progress["blocks_unrepairable"] += 1
            return {}
        try:
            shards = await asyncio.to_thread(_rebuild, policy, got, block["size"])
        except (NotEnoughShards, ValueError) as exc:
            self.progress["blocks_unrepairable"] += 1
            log.warning("block %s does not decode: %s", block["id"], exc)
            return {}
        fixed: dict[int, list] = {}
        spent = sum(len(v) for v in got.values())  # reads load the cluster too
        for slot, target in plan:
            data, digest = shards[slot]
            known = block["shards"][slot]
            if known is not None and not digest.startswith(known[1]):
                log.error("block %s slot %d re-encodes to a different shard", block["id"], slot)
                continue
            try:
                await self.client.put_shard(target.api, f"{block['id']}.{slot}", data, digest)
            except NodeUnavailable:
                continue
            fixed[slot] = [target.name, digest[:HASH_CHARS]]
            spent += len(data)
        await self._spent(spent)
        return fixed

    async def _spent(self, nbytes: int) -> None:
        self.progress["bytes_written"] += nbytes
        self.totals["bytes_written_total"] += nbytes
        await self.pacer.spend(nbytes)

    async def _update_record(self, partition: str, key: str, hlc: list,
                             changes: dict[int, dict[int, list]]) -> None:
        current = await self.meta.get(partition, key)
        if current is None or current.get("hlc") != hlc or current.get("deleted"):
            self.progress["records_skipped"] += 1
            return
        new = copy.deepcopy(current)
        for bi, slots in changes.items():
            for slot, ref in slots.items():
                new["blocks"][bi]["shards"][slot] = ref
        new["hlc"] = [hlc[0], hlc[1], f"{hlc[2]}~r"]
        await self.meta.put(partition, [(key, new)])
        self.progress["blocks_repaired"] += len(changes)
        self.progress["slots_repaired"] += sum(len(s) for s in changes.values())
        self.totals["slots_repaired_total"] += sum(len(s) for s in changes.values())
