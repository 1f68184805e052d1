"""Shard health of one block: which slots are good, which need repair, is it at full redundancy.

Shared by the gateway's admin report and the node's repairer, so "full redundancy" means
the same thing to the operator and to the process that restores it.

A block record (``gateway/records.py`` BlockRef) is ``{"id", "size", "shards"}`` where
``shards[i]`` is ``[node name, BLAKE3 hex prefix]`` or None, and shard ``i`` is stored on
that node as ``"{id}.{i}"``.

Slot states:

* ``ok``       the node holds the shard and its hash matches the record
* ``draining`` ok, but the node is being drained: the shard is copied elsewhere as is
* ``doubled``  ok, but an earlier slot of the block is on the same node (one node loss
  would cost two shards)
* ``empty``    never written (the write reached quorum without it)
* ``missing``  the node answered and has no such shard (e.g. the scrubber dropped it)
* ``corrupt``  the shard's bytes or stored hash do not match
* ``down``     the node is not reachable now but may come back: not repaired yet
* ``lost``     the node left, is unknown, or stayed failed past the repair deadline

A block is at *full redundancy* when every slot is ``ok`` (so k+m distinct nodes) and its
shards span ``min(k+m, zones with live nodes)`` zones. The repairer rebuilds every slot
in ``REPAIRABLE`` (and moves one slot when only the zone spread is wrong); ``down`` slots
wait for the deadline, because a node that restarts would otherwise trigger a costly
rebuild of everything it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cluster.membership import Member
from cluster.metadata import candidates
from cluster.nodeclient import NodeClient, NodeUnavailable
from placement.hrw import Candidate, place, rank
from placement.policy import StoragePolicy
from placement.spread import SpreadError, place_zoned

REPAIRABLE = frozenset({"doubled", "empty", "missing", "corrupt", "lost", "draining"})
DEFAULT_DEADLINE = 30.0  # seconds a failed node is waited for before its shards are rebuilt


@dataclass
class SlotHealth:
    slot: int
    node: str | None
    zone: str
    state: str
    hash: str | None

    def to_dict(self) -> dict:
        return {"slot": self.slot, "node": self.node, "zone": self.zone, "state": self.state,
                "hash": self.hash}


@dataclass
class BlockHealth:
    id: str
    size: int
    slots: list[SlotHealth]
    zones_used: int
    zones_wanted: int
    repair: list[int] = field(default_factory=list)  # slots the repairer should rebuild/move

    @property
    def full(self) -> bool:
        return (all(s.state == "ok" for s in self.slots)
                and self.zones_used >= self.zones_wanted)

    def to_dict(self) -> dict:
        return {"id": self.id, "size": self.size, "full": self.full,
                "zones_used": self.zones_used, "zones_wanted": self.zones_wanted,
                "repair": self.repair, "slots": [s.to_dict() for s in self.slots]}


class FailureClock:
    """When each node was first seen not alive, so "failed past the deadline" is measured
    from what this process saw (a restarted process waits the whole deadline again: late,
    never early)."""

    def __init__(self, deadline: float = DEFAULT_DEADLINE) -> None:
        self.deadline = deadline
        self._since: dict[str, float] = {}

    def observe(self, members: Iterable[Member]) -> None:
        now = time.monotonic()
        for m in members:
            if m.status == "alive":
                self._since.pop(m.name, None)
            else:
                self._since.setdefault(m.name, now)

    def lost(self, member: Member | None) -> bool:
        """True when the member's shards should be rebuilt elsewhere."""
        if member is None or member.status == "left" or not member.api:
            return True
        if member.status == "alive":
            return False
        since = self._since.get(member.name)
        return since is not None and time.monotonic() - since >= self.deadline


async def probe_block(client: NodeClient, members: dict[str, Member], block: dict,
                      verify: bool = False) -> dict[int, str]:
    """State of every slot whose node is alive: "ok", "missing", "corrupt" or "down" (the
    node did not answer). One check call per node; ``verify`` re-hashes shard bytes."""
    by_node: dict[str, list[int]] = {}
    for i, ref in enumerate(block["shards"]):
        m = members.get(ref[0]) if ref else None
        if m is not None and m.status == "alive" and m.api:
            by_node.setdefault(ref[0], []).append(i)

    async def ask(node: str, slots: list[int]) -> dict[int, str]:
        ids = [f"{block['id']}.{i}" for i in slots]
        try:
            found = await client.check_shards(members[node].api, ids, verify)
        except NodeUnavailable:
            return dict.fromkeys(slots, "down")
        out = {}
        for i, shard_id in zip(slots, ids, strict=True):
            state, digest = found.get(shard_id, ("missing", None))
            if state == "ok" and not (digest or "").startswith(block["shards"][i][1]):
                state = "corrupt"
            out[i] = state
        return out

    results = await asyncio.gather(*(ask(n, s) for n, s in by_node.items()))
    return {i: state for r in results for i, state in r.items()}


def assess_block(block: dict, members: dict[str, Member], probed: dict[int, str],
                 lost: Callable[[Member | None], bool]) -> BlockHealth:
    """Classify every slot of ``block`` (see the module doc) from membership and a probe."""
    slots: list[SlotHealth] = []
    seen_nodes: set[str] = set()
    for i, ref in enumerate(block["shards"]):
        if ref is None:
            slots.append(SlotHealth(i, None, "", "empty", None))
            continue
        node, digest = ref[0], ref[1]
        m = members.get(node)
        zone = m.zone if m is not None else ""
        if lost(m):
            state = "lost"
        elif m is None or m.status != "alive":
            state = "down"
        else:
            state = probed.get(i, "down")
        if state == "ok" and node in seen_nodes:
            state = "doubled"
        elif state == "ok" and m is not None and m.draining:
            state = "draining"
        if state in ("ok", "down"):
            seen_nodes.add(node)
        slots.append(SlotHealth(i, node, zone, state, digest))
    live_zones = {m.zone for m in members.values()
                  if m.status == "alive" and m.role == "node" and not m.draining}
    used = {s.zone for s in slots if s.state == "ok"}
    health = BlockHealth(block["id"], block["size"], slots, len(used),
                         min(len(slots), len(live_zones)))
    health.repair = [s.slot for s in slots if s.state in REPAIRABLE]
    if not health.repair and all(s.state == "ok" for s in slots) and not health.full:
        health.repair = [_most_crowded_slot(slots)]
    return health


def misplaced(block_id: str, slots: list[SlotHealth], policy: StoragePolicy,
              nodes: list[Member]) -> list[tuple[int, Member]]:
    """(slot, new node) moves that give a healthy block the node *set* placement picks
    for it on ``nodes`` now (for `shoal rebalance`). Comparing sets, not slot lists, moves
    only the shards whose node fell out of the pick -- about 1/N of them when an N-th node
    joins. Nothing moves while a picked node is not alive (it may be back soon)."""
    by_name = {m.name: m for m in nodes}
    try:
        picks = (place_zoned(block_id.encode(), candidates(nodes), policy) if policy.zones > 1
                 else place(block_id.encode(), candidates(nodes), policy.width))
    except SpreadError:
        return []
    if any(by_name[c.name].status != "alive" for c in picks):
        return []
    wanted = [c.name for c in picks]
    holders = {s.node for s in slots}
    wrong = [s.slot for s in slots if s.node not in wanted]
    free = [by_name[name] for name in wanted if name not in holders]
    return list(zip(wrong, free, strict=False))


def _most_crowded_slot(slots: list[SlotHealth]) -> int:
    """The last slot in the zone holding the most shards: moving it widens the spread."""
    counts: dict[str, int] = {}
    for s in slots:
        counts[s.zone] = counts.get(s.zone, 0) + 1
    crowded = max(counts, key=lambda z: (counts[z], z))
    return max(s.slot for s in slots if s.zone == crowded)


def pick_targets(block_id: str, keep: Iterable[str], nodes: list[Candidate],
                 count: int, zone_cap: int | None = None) -> list[Candidate]:
    """``count`` new homes for a block's shards: nodes not in ``keep`` (nodes that keep a
    shard of the block), least-used zone first, then by rendezvous rank of the block id
    (so two repairers of the same block tend to agree). ``zone_cap`` keeps a bucket's
    zone promise (at most m shards per zone). Fewer when nodes run out."""
    kept = set(keep)
    zone_of = {c.name: c.zone for c in nodes}
    zone_use: dict[str, int] = {}
    for name in kept:
        zone = zone_of.get(name)
        if zone is not None:
            zone_use[zone] = zone_use.get(zone, 0) + 1
    ranked = [c for c in rank(block_id.encode(), nodes) if c.name not in kept]
    picked: list[Candidate] = []
    for _ in range(count):
        if not ranked:
            break
        open_ = [j for j in range(len(ranked))
                 if zone_cap is None or zone_use.get(ranked[j].zone, 0) < zone_cap]
        if not open_:
            break
        best = min(open_, key=lambda j: (zone_use.get(ranked[j].zone, 0), j))
        choice = ranked.pop(best)
        picked.append(choice)
        zone_use[choice.zone] = zone_use.get(choice.zone, 0) + 1
    return picked
