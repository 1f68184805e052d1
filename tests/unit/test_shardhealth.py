"""Slot classification, full redundancy and repair targets (cluster/shardhealth.py)."""

from __future__ import annotations

import time

from cluster.membership import Member
from cluster.metadata import candidates
from cluster.shardhealth import (
    FailureClock,
    SlotHealth,
    assess_block,
    misplaced,
    pick_targets,
)
from placement.hrw import place
from placement.policy import StoragePolicy


def member(i: int, status: str = "alive", zones: int = 3) -> Member:
    return Member(name=f"n{i}", addr="", status=status, role="node", api=f"http://n{i}",
                  zone=f"z{i % zones}", capacity=0)


def block(nodes: list[str | None]) -> dict:
    return {"id": "b1", "size": 10,
            "shards": [None if n is None else [n, "ab"] for n in nodes]}


def view(*ms: Member) -> dict[str, Member]:
    return {m.name: m for m in ms}


def never_lost(m: Member | None) -> bool:
    return m is None or m.status == "left"


def test_all_ok_on_distinct_nodes_in_every_zone_is_full():
    members = view(*(member(i) for i in range(6)))
    b = block([f"n{i}" for i in range(6)])
    h = assess_block(b, members, dict.fromkeys(range(6), "ok"), never_lost)
    assert h.full and h.repair == [] and h.zones_used == 3


def test_doubled_empty_missing_corrupt_need_repair():
    members = view(*(member(i) for i in range(6)))
    b = block(["n0", "n1", "n0", None, "n4", "n5"])
    probed = {0: "ok", 1: "missing", 2: "ok", 4: "corrupt", 5: "ok"}
    h = assess_block(b, members, probed, never_lost)
    states = [s.state for s in h.slots]
    assert states == ["ok", "missing", "doubled", "empty", "corrupt", "ok"]
    assert h.repair == [1, 2, 3, 4] and not h.full


def test_failed_node_waits_for_the_deadline_then_is_lost():
    members = view(*(member(i) for i in range(5)), member(5, status="failed"))
    clock = FailureClock(deadline=0.05)
    clock.observe(members.values())
    b = block([f"n{i}" for i in range(6)])
    probed = dict.fromkeys(range(5), "ok")
    first = assess_block(b, members, probed, clock.lost)
    assert first.slots[5].state == "down" and first.repair == [] and not first.full
    time.sleep(0.06)
    later = assess_block(b, members, probed, clock.lost)
    assert later.slots[5].state == "lost" and later.repair == [5]


def test_left_or_unknown_node_is_lost_at_once():
    members = view(*(member(i) for i in range(5)), member(5, status="left"))
    b = block([f"n{i}" for i in range(5)] + ["gone"])
    h = assess_block(b, members, dict.fromkeys(range(5), "ok"), FailureClock(3600).lost)
    assert h.repair == [5] and h.slots[5].state == "lost"
    b2 = block([f"n{i}" for i in range(6)])
    h2 = assess_block(b2, members, dict.fromkeys(range(5), "ok"), FailureClock(3600).lost)
    assert h2.slots[5].state == "lost"


def test_zone_spread_lost_picks_one_slot_to_move():
    # 3 zones with live nodes, but all shards sit in zones z0 and z1.
    members = view(*(member(i) for i in range(9)))
    b = block(["n0", "n3", "n1", "n4"])  # z0, z0, z1, z1
    h = assess_block(b, members, dict.fromkeys(range(4), "ok"), never_lost)
    assert not h.full and h.zones_used == 2 and h.zones_wanted == 3
    assert len(h.repair) == 1


def test_targets_avoid_kept_nodes_and_fill_the_emptiest_zone():
    members = [member(i) for i in range(6)]
    nodes = candidates(members)
    picked = pick_targets("b1", keep=["n0", "n3", "n1", "n4"], nodes=nodes, count=2)
    assert {c.name for c in picked} == {"n2", "n5"}  # zone z2 had no shard
    assert pick_targets("b1", keep=[f"n{i}" for i in range(6)], nodes=nodes, count=1) == []


def test_a_draining_node_slot_is_moved_and_not_full():
    members = view(*(member(i) for i in range(7)))
    members["n2"] = Member(**{**members["n2"].__dict__, "draining": True})
    h = assess_block(block([f"n{i}" for i in range(6)]), members,
                     dict.fromkeys(range(6), "ok"), never_lost)
    assert h.slots[2].state == "draining" and h.repair == [2] and not h.full


def test_targets_keep_the_zone_cap():
    nodes = candidates([member(i) for i in range(9)])  # 3 zones of 3
    kept = ["n0", "n3", "n1", "n4"]  # two shards each in z0 and z1
    picks = pick_targets("b1", kept, nodes, 3, zone_cap=2)
    assert [c.zone for c in picks] == ["z2", "z2"]  # z2 takes two; a third breaks the cap


def test_misplaced_moves_only_shards_off_the_placement_set():
    six = [member(i) for i in range(6)]
    seven = [*six, member(6)]
    policy = StoragePolicy("ec", 4, 2)
    moved = 0
    for n in range(300):
        block_id = f"block-{n}"
        picks = place(block_id.encode(), candidates(six), 6)
        slots = [SlotHealth(i, c.name, c.zone, "ok", "ab") for i, c in enumerate(picks)]
        assert misplaced(block_id, slots, policy, six) == []  # already where placement says
        moves = misplaced(block_id, slots, policy, seven)
        assert all(target.name == "n6" for _, target in moves)  # only onto the new node
        after = {s.node for s in slots} - {slots[i].node for i, _ in moves} | {
            t.name for _, t in moves}
        assert after == {c.name for c in place(block_id.encode(), candidates(seven), 6)}
        moved += len(moves)
    assert 0.08 < moved / (300 * 6) < 0.2  # about 1/7 of the shards (ideal 0.143)


def test_misplaced_waits_while_a_picked_node_is_down():
    nodes = [member(i) for i in range(6)] + [member(6, status="failed")]
    block_id = next(f"b{n}" for n in range(1000)  # a block placement puts on n6
                    if "n6" in {c.name for c in place(f"b{n}".encode(), candidates(nodes), 6)})
    picks = place(block_id.encode(), candidates(nodes[:6]), 6)
    slots = [SlotHealth(i, c.name, c.zone, "ok", "ab") for i, c in enumerate(picks)]
    assert misplaced(block_id, slots, StoragePolicy("ec", 4, 2), nodes) == []
    alive = [*nodes[:6], member(6)]
    assert [t.name for _, t in misplaced(block_id, slots, StoragePolicy("ec", 4, 2), alive)
            ] == ["n6"]
