"""Weighted, zone-aware rendezvous (HRW) hashing.

Contracts:

* Deterministic: the result depends only on the key and the *set* of candidates, never on
  their order in the input or on the process (the hash is BLAKE2b-64 of the length-prefixed
  key and the node name, not ``hash()``). Across platforms only a last-bit difference in
  libm's ``log`` could matter, and only for two scores equal to ~15 digits.
* Weighted: a node's chance to rank first is ``weight / total weight`` (the
  ``-weight / ln(u)`` score of Schindelhauer & Schomaker's weighted HRW).
* Minimal disruption: a node's score for a key does not depend on the other nodes, so adding
  or removing one node only changes placements in which that node takes part: the picked
  *set* loses at most one node and gains at most that node (property-tested); for
  ``owners(r=1)`` exactly the keys whose top-ranked node changed move.
* Zone spread: ``place``/``owners`` take the best node of every zone before the second-best
  of any zone, so picks per zone differ by at most one while zones have nodes to give.

Note on shard slots: ``place(...)[i]`` is the node for shard slot ``i``. When one node joins
or leaves, the set changes by one node, but slots after the changed position can shift (rank
order is slot order; a zone moving up the zone order shifts more), so a caller that moves data
should compare sets, not slot lists: by set ~1x the ideal 1/N moves, by slot ~2-3x
(benchmarks/placement_sim.py).

Hash: BLAKE2b-64 from a copied per-key state measured ~410 ns per (key, node) here, BLAKE3 of
the same input 850-1,270 ns (per-call overhead dominates for such short inputs).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import blake2b

__all__ = ["Candidate", "score", "rank", "zone_spread", "place", "owners"]

# u is built from the top 52 bits of the hash plus one half, so it lies strictly inside (0, 1)
# and every value is exact in a double: ln(u) is never 0 and never -inf.
_U_SCALE = 2.0**-52


@dataclass(frozen=True, order=True)
class Candidate:
    """A storage node as placement sees it.

    ``name`` is unique and stable (it is hashed), ``zone`` is the failure domain and
    ``weight`` the relative capacity (finite, > 0).
    """

    name: str
    zone: str = "default"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("candidate name must be a non-empty string")
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight)):
            raise ValueError(f"candidate {self.name!r}: weight must be a finite number")
        if self.weight <= 0:
            raise ValueError(f"candidate {self.name!r}: weight must be > 0")


def _key_state(key: bytes) -> blake2b:
    # Length-prefixing the key makes (key, name) -> hash input injective.
    h = blake2b(digest_size=8)
    h.update(len(key).to_bytes(8, "big"))
    h.update(key)
    return h


def _score_with(state: blake2b, node: Candidate) -> float:
    h = state.copy()
    h.update(node.name.encode())
    u = ((int.from_bytes(h.digest(), "big") >> 12) + 0.5) * _U_SCALE
    return -node.weight / math.log(u)


def score(key: bytes, node: Candidate) -> float:
    """HRW score of ``node`` for ``key``: ``-weight / ln(u)``, u in (0, 1) from a 64-bit
    BLAKE2b hash of (key, node.name). Higher wins. Deterministic and always > 0."""
    return _score_with(_key_state(bytes(key)), node)


def _unique(nodes: Sequence[Candidate]) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for c in nodes:
        prev = seen.get(c.name)
        if prev is None:
            seen[c.name] = c
        elif prev != c:
            # Keeping either one would make the result depend on input order.
            raise ValueError(f"conflicting candidates named {c.name!r}: {prev} vs {c}")
    return list(seen.values())


def rank(key: bytes, nodes: Sequence[Candidate]) -> list[Candidate]:
    """All distinct nodes by descending score for ``key`` (ties broken by ascending name).

    Exact duplicates in ``nodes`` are ignored; two different candidates with the same name
    raise ValueError.
    """
    # The loop inlines _score_with (it is the hot path for large clusters). The first tuple
    # item is exactly -score(key, c); names are unique, so sorting never compares candidates.
    copy = _key_state(bytes(key)).copy
    from_bytes = int.from_bytes
    log = math.log
    scored = []
    for c in _unique(nodes):
        h = copy()
        h.update(c.name.encode())
        u = ((from_bytes(h.digest(), "big") >> 12) + 0.5) * _U_SCALE
        scored.append((c.weight / log(u), c.name, c))
    scored.sort()
    return [t[2] for t in scored]


def zone_spread(ranked: Sequence[Candidate]) -> list[Candidate]:
    """Reorder an already ranked list into zone round-robin order.

    Zones are ordered by the rank of their best node; the result holds the best node of each
    zone (in that zone order), then the second-best of each zone that has one, and so on.
    Every input node appears exactly once. ``place``/``owners`` take a prefix of this.
    """
    by_zone: dict[str, list[Candidate]] = {}
    for c in ranked:
        # dict insertion order == zones ordered by their best node's rank
        by_zone.setdefault(c.zone, []).append(c)
    zones = list(by_zone.values())
    out: list[Candidate] = []
    depth = 0
    while zones:
        out.extend(z[depth] for z in zones)
        depth += 1
        zones = [z for z in zones if len(z) > depth]
    return out


def _spread_head(ranked: list[Candidate], n: int) -> list[Candidate]:
    """``zone_spread(ranked)[:n]``, scanning only the ranked prefix that decides it.

    The first n picks come from rounds < n, so they are fixed once every zone has shown its
    top ``min(n, size of zone)`` nodes (its first node also fixes the zone order).
    """
    need = Counter(c.zone for c in ranked)
    for zone, size in need.items():
        need[zone] = min(n, size)
    open_zones = len(need)
    prefix: list[Candidate] = []
    for c in ranked:
        if open_zones == 0:
            break
        prefix.append(c)
        left = need[c.zone]
        if left > 0:
            need[c.zone] = left - 1
            if left == 1:
                open_zones -= 1
    return zone_spread(prefix)[:n]


def place(key: bytes, nodes: Sequence[Candidate], n: int) -> list[Candidate]:
    """The nodes for shard slots ``0..n-1`` of ``key``, zone-spread (see ``zone_spread``).

    Picks are distinct when there are at least ``n`` distinct nodes; with fewer, the
    zone-spread order repeats so a write still has a target for every slot.
    Raises ValueError on empty ``nodes`` or ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    spread = _spread_head(rank(key, nodes), n)
    if not spread:
        raise ValueError("no candidate nodes")
    return [spread[i % len(spread)] for i in range(n)]


def owners(key: bytes, nodes: Sequence[Candidate], r: int) -> list[Candidate]:
    """Metadata owners of ``key``: ``min(r, len(distinct nodes))`` distinct nodes, zone-spread
    like ``place``. Raises ValueError on empty ``nodes`` or ``r < 1``."""
    if r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    spread = _spread_head(rank(key, nodes), r)
    if not spread:
        raise ValueError("no candidate nodes")
    return spread
