"""Placement simulation: balance and movement of placement.hrw for 10 to 10,000 nodes.

    python -m benchmarks.placement_sim [--quick] [--seed N] [--sizes 10,100,1000,10000]
                                       [--keys N] [--changes N]

Each cluster size gets nodes of 1, 2 or 4 TB (probabilities 0.5, 0.3, 0.2, fixed seed) spread
over 3..10 zones of near-equal capacity, and a set of keys. It prints:

* balance: for ``place(n=6)``, max over nodes of (shards / weight) divided by the mean
  (total shards / total weight); beside it the same figure for an ideal placement (each key
  draws 6 distinct nodes at random with probability by weight), i.e. the sampling noise that
  the key count allows. Two noise-robust figures show whether anything beyond noise is
  left: "disp", the dispersion index (mean of (load - expected)^2 / expected over nodes; about
  1 for random placement, well above 1 if some nodes are systematically favoured) and
  "skew", max/mean of load per unit of weight aggregated per weight class and per zone.
  Also max/mean for ``owners(r=3)``. A node holds at most one shard of a key, so in tiny
  clusters heavy nodes are capped below their weight share (10 nodes: a 4 TB node would
  need more than one of every key's 6 shards).
* movement: many *independent* single-node changes (one join of a node not in the cluster,
  or one leave of a member), each compared with the unevaluated cluster. "set" counts shards
  whose node set lost a member (what a rebalancer must copy); "slot" counts shard slots whose
  node evaluated (what moves if shard i must live on place()[i]). The ideal for a node of
  weight w is its capacity share: w / (W + w) of all shards for a join, w / W for a leave
  (1/N with equal weights). Ratios are total moved / total ideal over all changes.

How it stays cheap and exact: a node's score does not depend on the other nodes, so every key
is ranked once over members + joiners with ``rank``; each membership is then a filter of that
ranking, and only its prefix matters (``place(n)`` is fixed once every zone has shown its top
n nodes). The first keys of every size are cross-checked against ``place``/``owners`` called
on the evaluated membership itself.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from placement.hrw import Candidate, owners, place, rank, zone_spread  # noqa: E402

PICKS = 6  # shards per block with the 4+2 default
OWNER_COUNT = 3  # metadata owners (R)
WEIGHT_CLASSES = ((1.0, 0.5), (2.0, 0.3), (4.0, 0.2))  # TB, probability
ZONES = {10: 3, 100: 5, 1000: 8, 10000: 10}
# (keys, single-node changes of each kind); sized so that 10,000 nodes take < 2 minutes here.
FULL = {10: (20_000, 10), 100: (40_000, 20), 1000: (20_000, 50), 10000: (2_000, 400)}
QUICK = {10: (4_000, 10), 100: (3_000, 20), 1000: (1_000, 40), 10000: (100, 100)}
CHECK_KEYS = 10  # keys per size cross-checked against the library (fewer for 10,000 nodes)
CHECK_BUDGET = 40_000  # ~node rankings the cross-check may spend per size


def draw_weight(rng: random.Random) -> float:
    weights, probs = zip(*WEIGHT_CLASSES, strict=True)
    return rng.choices(weights, probs)[0]


def make_cluster(rng: random.Random, size: int, zones: int) -> list[Candidate]:
    """``size`` nodes with random weights; each goes to the zone with the least capacity so far
    (zones of equal capacity, as an operator would build them)."""
    weights = sorted((draw_weight(rng) for _ in range(size)), reverse=True)
    capacity = [0.0] * zones
    nodes = []
    for i, w in enumerate(weights):
        z = min(range(zones), key=lambda j: (capacity[j], j))
        capacity[z] += w
        nodes.append(Candidate(f"node-{i:05d}", f"zone-{z}", w))
    return nodes


@dataclass
class Movement:
    """Moved shards summed over many single-node changes, and the ideal for those changes."""

    set_moved: int = 0
    slot_moved: int = 0
    ideal: float = 0.0
    ideal_fraction: list[float] = field(default_factory=list)

    def add(self, before: Sequence[Candidate], after: Sequence[Candidate]) -> None:
        self.set_moved += len(set(before) - set(after))
        self.slot_moved += sum(a != b for a, b in zip(before, after, strict=True))


@dataclass
class SizeResult:
    nodes: int
    zones: int
    keys: int
    changes: int
    place_balance: float
    place_dispersion: float
    place_skew: float
    noise_balance: float
    noise_dispersion: float
    owner_balance: float
    movement: dict[tuple[str, int], Movement]
    seconds: float
    cpu_seconds: float


def prefix(ranked: Sequence[Candidate], need: dict[str, int]) -> list[Candidate]:
    """Shortest head of ``ranked`` holding ``need[zone]`` nodes of every zone."""
    left = dict(need)
    open_zones = sum(1 for v in left.values() if v > 0)
    out = []
    for c in ranked:
        if open_zones == 0:
            break
        out.append(c)
        if left[c.zone] > 0:
            left[c.zone] -= 1
            open_zones -= left[c.zone] == 0
    return out


def balance(load: Counter[Candidate], nodes: Sequence[Candidate]) -> float:
    """max over nodes of load/weight, over total load / total weight."""
    mean = sum(load.values()) / sum(c.weight for c in nodes)
    return max(load[c] / c.weight for c in nodes) / mean


def dispersion(load: Counter[Candidate], nodes: Sequence[Candidate]) -> float:
    """Mean over nodes of (load - expected)^2 / expected, expected by weight share."""
    per_weight = sum(load.values()) / sum(c.weight for c in nodes)
    return sum((load[c] - c.weight * per_weight) ** 2 / (c.weight * per_weight) for c in nodes) / (
        len(nodes)
    )


def skew(load: Counter[Candidate], nodes: Sequence[Candidate]) -> float:
    """max/mean of load per unit of weight, aggregated per weight class and per zone."""
    mean = sum(load.values()) / sum(c.weight for c in nodes)
    worst = 0.0
    for group in (lambda c: c.weight, lambda c: c.zone):
        got: Counter[object] = Counter()
        weight: Counter[object] = Counter()
        for c in nodes:
            got[group(c)] += load[c]
            weight[group(c)] += c.weight
        worst = max(worst, *(got[g] / weight[g] / mean for g in weight))
    return worst


def ideal_load(
    rng: random.Random, nodes: Sequence[Candidate], keys: int, n: int
) -> Counter[Candidate]:
    """Load of a placement that draws n distinct nodes per key at random, by weight."""
    cum = []
    total = 0.0
    for c in nodes:
        total += c.weight
        cum.append(total)
    load: Counter[Candidate] = Counter()
    for _ in range(keys):
        picked: set[Candidate] = set()
        while len(picked) < n:
            picked.update(rng.choices(nodes, cum_weights=cum, k=n - len(picked)))
        load.update(picked)
    return load


def simulate(size: int, zones: int, n_keys: int, n_changes: int, seed: int) -> SizeResult:
    rng = random.Random(seed * 1_000_003 + size)
    started = time.perf_counter()
    cpu_started = time.process_time()
    nodes = make_cluster(rng, size, zones)
    zone_names = sorted({c.zone for c in nodes})
    joiners = [
        Candidate(f"join-{i:04d}", rng.choice(zone_names), draw_weight(rng))
        for i in range(n_changes)
    ]
    leavers = set(rng.sample(nodes, min(n_changes, size)))
    joiner_set = set(joiners)
    everyone = [*nodes, *joiners]
    total_weight = sum(c.weight for c in nodes)

    # The prefix must decide the head for every membership: n+1 members per zone survive a
    # leave, and a zone's joiners may sit in its prefix too (see module doc).
    zone_size = Counter(c.zone for c in everyone)
    zone_joiners = Counter(c.zone for c in joiners)
    need = {z: min(PICKS + 1 + zone_joiners[z], zone_size[z]) for z in zone_size}

    movement = {(kind, n): Movement() for kind in ("join", "leave") for n in (PICKS, OWNER_COUNT)}
    for n in (PICKS, OWNER_COUNT):
        for j in joiners:
            share = j.weight / (total_weight + j.weight)
            movement["join", n].ideal += n_keys * n * share
            movement["join", n].ideal_fraction.append(share)
        for leaver in leavers:
            share = leaver.weight / total_weight
            movement["leave", n].ideal += n_keys * n * share
            movement["leave", n].ideal_fraction.append(share)

    check_keys = max(1, min(CHECK_KEYS, CHECK_BUDGET // size))
    place_load: Counter[Candidate] = Counter()
    owner_load: Counter[Candidate] = Counter()
    for i in range(n_keys):
        key = f"bucket-{i % 97}/object-{i}".encode()
        head = prefix(rank(key, everyone), need)
        members = [c for c in head if c not in joiner_set]
        base = {n: zone_spread(members)[:n] for n in (PICKS, OWNER_COUNT)}
        place_load.update(base[PICKS])
        owner_load.update(base[OWNER_COUNT])
        # A joiner or leaver ranked beyond the prefix changes nothing for this key (the
        # prefix still decides the head), so only those inside it are evaluated.
        evaluated: dict[tuple[str, Candidate], list[Candidate]] = {}
        for c in head:
            if c in joiner_set:
                evaluated["join", c] = zone_spread(
                    [x for x in head if x not in joiner_set or x is c]
                )
            elif c in leavers:
                evaluated["leave", c] = zone_spread([x for x in members if x is not c])
        for (kind, _), spread in evaluated.items():
            for n in (PICKS, OWNER_COUNT):
                movement[kind, n].add(base[n], spread[:n])
        if i < check_keys:
            cross_check(key, nodes, joiners, leavers, base, evaluated, rng)

    noise_load = ideal_load(rng, nodes, n_keys, PICKS)
    return SizeResult(
        nodes=size,
        zones=zones,
        keys=n_keys,
        changes=n_changes,
        place_balance=balance(place_load, nodes),
        place_dispersion=dispersion(place_load, nodes),
        place_skew=skew(place_load, nodes),
        noise_balance=balance(noise_load, nodes),
        noise_dispersion=dispersion(noise_load, nodes),
        owner_balance=balance(owner_load, nodes),
        movement=movement,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
    )


def cross_check(
    key: bytes,
    nodes: list[Candidate],
    joiners: Iterable[Candidate],
    leavers: Iterable[Candidate],
    base: dict[int, list[Candidate]],
    evaluated: dict[tuple[str, Candidate], list[Candidate]],
    rng: random.Random,
) -> None:
    """Recompute this key's placements with the library itself: on the base membership, on
    every membership the simulation evaluated, and on a few it skipped as unevaluated."""
    for n in (PICKS, OWNER_COUNT):
        if not place(key, nodes, n) == owners(key, nodes, n) == base[n]:
            raise AssertionError("simulation disagrees with the library on the base membership")
    skipped = [("join", j) for j in joiners if ("join", j) not in evaluated]
    skipped += [("leave", x) for x in leavers if ("leave", x) not in evaluated]
    for kind, c in [*evaluated, *rng.sample(skipped, min(3, len(skipped)))]:
        members = [*nodes, c] if kind == "join" else [x for x in nodes if x is not c]
        expected = evaluated.get((kind, c), base[PICKS])
        if (
            place(key, members, PICKS) != expected[:PICKS]
            or owners(key, members, OWNER_COUNT) != expected[:OWNER_COUNT]
        ):
            raise AssertionError(f"simulation disagrees with the library: {kind} {c.name}")


def report(results: list[SizeResult]) -> None:
    print("\nBalance: max/mean of shards per unit of weight (1.00 is perfect)")
    print(f"{'nodes':>6} {'zones':>5} {'keys':>7} | {'place(6)':>8} {'disp':>5} {'skew':>5} | "
          f"{'random(6)':>9} {'disp':>5} | {'owners(3)':>9} | {'cpu s':>6} {'wall s':>6}")  # fmt: skip
    for r in results:
        print(f"{r.nodes:>6} {r.zones:>5} {r.keys:>7} | {r.place_balance:>8.3f} "
              f"{r.place_dispersion:>5.2f} {r.place_skew:>5.3f} | {r.noise_balance:>9.3f} "
              f"{r.noise_dispersion:>5.2f} | {r.owner_balance:>9.3f} | "
              f"{r.cpu_seconds:>6.1f} {r.seconds:>6.1f}")  # fmt: skip

    print("\nMovement per single-node change: fraction of shards moved, ideal, ratio to ideal")
    print(f"{'nodes':>6} {'what':>9} {'change':>6} {'count':>5} {'1/N':>9} {'ideal':>9} "
          f"{'set moved':>10} {'x ideal':>8} {'slot moved':>11} {'x ideal':>8}")  # fmt: skip
    for r in results:
        for (kind, n), mv in sorted(r.movement.items(), key=lambda t: (-t[0][1], t[0][0])):
            changes = len(mv.ideal_fraction)
            shards = r.keys * n * changes
            ideal = sum(mv.ideal_fraction) / changes
            what = "place" if n == PICKS else "owners"
            print(
                f"{r.nodes:>6} {what:>9} {kind:>6} {changes:>5} {1 / r.nodes:>9.5f} {ideal:>9.5f} "
                f"{mv.set_moved / shards:>10.5f} {mv.set_moved / mv.ideal:>8.2f} "
                f"{mv.slot_moved / shards:>11.5f} {mv.slot_moved / mv.ideal:>8.2f}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer keys and changes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default="10,100,1000,10000", help="comma-separated")
    parser.add_argument("--keys", type=int, help="keys per size instead of the plan's "
                        "(balance noise shrinks as 1/sqrt(shards per node))")
    parser.add_argument("--changes", type=int, help="joins and leaves instead of the plan's")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        zones = ZONES.get(size, 3 + size % 8)
        keys, changes = plan.get(size, plan[min(plan, key=lambda s: abs(s - size))])
        keys, changes = args.keys or keys, args.changes or changes
        print(f"simulating {size} nodes in {zones} zones: {keys} keys, "
              f"{changes} joins and leaves ...", flush=True)  # fmt: skip
        results.append(simulate(size, zones, keys, changes, args.seed))
    report(results)
    print("\ncount: separate single-node changes averaged; ideal: mean capacity share of the node")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
