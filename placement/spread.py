"""Zone guarantees of a storage policy: what ``zones`` promises and how writes keep it.

A policy with ``zones == Z >= 2`` promises that a block survives the loss of any one whole
zone. Placement keeps that promise by two rules on every block's k+m shards:

* the shards sit on k+m *distinct* nodes in at least ``Z`` distinct zones, and
* no zone holds more than ``m`` of them, so losing any one zone leaves at least ``k``.

(ec 2+1 with zones 3: one shard per zone; ec 4+2 with zones 3: at most two per zone;
replica:2 with zones 2: the two copies in two zones.) ``zones == 1`` promises nothing
about zones; ``place`` still spreads as evenly as it can.

``feasible`` tells whether a set of live nodes can hold such a block at all (checked when
a bucket is created); ``place_zoned`` picks the nodes for one block (checked on every
write); both are pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from placement.hrw import Candidate, rank, zone_spread
from placement.policy import StoragePolicy

__all__ = ["SpreadError", "feasible", "place_zoned", "spread_problem"]


class SpreadError(Exception):
    """The nodes at hand cannot hold a block under the policy's zone guarantee."""


def feasible(policy: StoragePolicy, nodes: Sequence[Candidate]) -> str | None:
    """None when ``nodes`` can hold a block of ``policy``; else the reason, in words."""
    distinct = {c.name: c for c in nodes}
    if len(distinct) < policy.width:
        return (f"policy {policy} needs {policy.width} live storage nodes; "
                f"the cluster has {len(distinct)}")
    if policy.zones <= 1:
        return None
    if policy.m == 0:
        return (f"policy {policy} has no redundancy, so no block can survive the loss of a "
                f"zone; zones {policy.zones} needs m >= 1")
    if policy.width < policy.zones:
        return (f"policy {policy} has {policy.width} shards per block: they cannot span "
                f"{policy.zones} zones")
    per_zone = Counter(c.zone for c in distinct.values())
    if len(per_zone) < policy.zones:
        return (f"policy {policy} with zones {policy.zones} needs live nodes in "
                f"{policy.zones} zones; the cluster has {len(per_zone)}")
    room = sum(min(n, policy.m) for n in per_zone.values())
    if room < policy.width:
        return (f"policy {policy} with zones {policy.zones} puts at most {policy.m} shards "
                f"in one zone, so its {policy.width} shards need more zones or nodes: "
                f"live nodes per zone are {dict(sorted(per_zone.items()))}")
    return None


def spread_problem(policy: StoragePolicy, picks: Sequence[Candidate]) -> str | None:
    """None when ``picks`` (one per shard slot) keep the policy's zone guarantee."""
    if policy.zones <= 1:
        return None
    if len({c.name for c in picks}) < len(picks):
        return "shards would share a node"
    per_zone = Counter(c.zone for c in picks)
    if len(per_zone) < policy.zones:
        return f"shards would span {len(per_zone)} zones, fewer than {policy.zones}"
    worst = max(per_zone.values())
    if worst > policy.m:
        return f"{worst} shards would sit in one zone, more than m={policy.m}"
    return None


def place_zoned(key: bytes, nodes: Sequence[Candidate], policy: StoragePolicy
                ) -> list[Candidate]:
    """Shard-slot nodes for a block of a policy with ``zones >= 2``.

    The zone round-robin order of ``hrw.place`` with every zone capped at ``m`` picks, so
    it equals ``place`` whenever ``place`` already keeps the guarantee. Raises SpreadError
    when the nodes cannot keep it.
    """
    taken: Counter[str] = Counter()
    picks: list[Candidate] = []
    for c in zone_spread(rank(key, nodes)):
        if taken[c.zone] < policy.m:
            taken[c.zone] += 1
            picks.append(c)
            if len(picks) == policy.width:
                break
    problem = (f"only {len(picks)} of {policy.width} shards can be placed"
               if len(picks) < policy.width else spread_problem(policy, picks))
    if problem:
        raise SpreadError(problem)
    return picks
