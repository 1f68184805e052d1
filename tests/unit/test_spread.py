"""placement/spread.py: the zone guarantee of a policy, checked and kept by placement."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.hrw import Candidate, place
from placement.policy import StoragePolicy
from placement.spread import SpreadError, feasible, place_zoned, spread_problem


def nodes(per_zone: dict[str, int]) -> list[Candidate]:
    return [Candidate(f"{z}-n{i}", z) for z, n in per_zone.items() for i in range(n)]


EC21Z3 = StoragePolicy("ec", 2, 1, zones=3)


def test_feasible_names_what_is_missing() -> None:
    assert feasible(EC21Z3, nodes({"a": 1, "b": 1, "c": 1})) is None
    assert "needs 3 live storage nodes" in feasible(EC21Z3, nodes({"a": 2}))
    assert "needs live nodes in 3 zones" in feasible(EC21Z3, nodes({"a": 2, "b": 2}))
    assert "needs m >= 1" in feasible(StoragePolicy("ec", 2, 0, zones=2),
                                      nodes({"a": 2, "b": 2}))
    assert "cannot span 3 zones" in feasible(StoragePolicy("ec", 1, 1, zones=3),
                                             nodes({"a": 2, "b": 2, "c": 2}))
    # 4+2 over 3 zones holds at most 2 per zone: a zone of 1 node leaves 5 slots of 6.
    assert "at most 2 shards" in feasible(StoragePolicy("ec", 4, 2, zones=3),
                                          nodes({"a": 1, "b": 3, "c": 3}))
    assert feasible(StoragePolicy("ec", 4, 2, zones=3), nodes({"a": 2, "b": 2, "c": 2})) is None
    # zones=1 promises nothing about zones: only the node count matters.
    assert feasible(StoragePolicy("ec", 4, 2), nodes({"a": 6})) is None


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 4), min_size=1, max_size=5),
       k=st.integers(1, 6), m=st.integers(1, 3), zones=st.integers(2, 4),
       key=st.binary(min_size=1, max_size=8))
def test_place_zoned_keeps_the_guarantee_exactly_when_feasible(sizes, k, m, zones, key) -> None:
    policy = StoragePolicy("ec", k, m, zones=zones)
    cands = nodes({f"z{i}": n for i, n in enumerate(sizes)})
    if not cands:
        return
    if feasible(policy, cands) is not None:
        with pytest.raises(SpreadError):
            place_zoned(key, cands, policy)
        return
    picks = place_zoned(key, cands, policy)
    assert len(picks) == k + m and len(set(picks)) == k + m
    per_zone = Counter(c.zone for c in picks)
    assert len(per_zone) >= zones and max(per_zone.values()) <= m
    # Losing any one zone leaves at least k shards.
    assert all(k + m - lost >= k for lost in per_zone.values())
    assert spread_problem(policy, picks) is None
    # Where plain zone-spread placement already keeps the guarantee, nothing changes.
    if spread_problem(policy, place(key, cands, k + m)) is None:
        assert picks == place(key, cands, k + m)


def test_spread_problem_spots_a_crowded_zone() -> None:
    a1, a2, b1 = Candidate("a1", "a"), Candidate("a2", "a"), Candidate("b1", "b")
    assert "2 shards would sit in one zone" in spread_problem(
        StoragePolicy("ec", 2, 1, zones=2), [a1, a2, b1])
    assert "share a node" in spread_problem(StoragePolicy("ec", 1, 1, zones=2), [a1, a1])
