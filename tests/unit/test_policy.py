"""placement.policy: parsing, validation, quorum arithmetic, round trips, cluster default."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placement.policy import StoragePolicy, default_policy, parse_policy


@pytest.mark.parametrize(
    ("text", "kind", "k", "m", "shown"),
    [
        ("4+2", "ec", 4, 2, "ec:4+2"),
        ("ec:4+2", "ec", 4, 2, "ec:4+2"),
        (" EC:8+4 ", "ec", 8, 4, "ec:8+4"),
        ("1+0", "ec", 1, 0, "ec:1+0"),
        ("16+8", "ec", 16, 8, "ec:16+8"),
        ("replica:3", "replica", 1, 2, "replica:3"),
        ("3x", "replica", 1, 2, "replica:3"),
        ("1x", "replica", 1, 0, "replica:1"),
        ("replica:8", "replica", 1, 7, "replica:8"),
    ],
)
def test_parse_valid(text: str, kind: str, k: int, m: int, shown: str) -> None:
    policy = parse_policy(text)
    assert (policy.kind, policy.k, policy.m) == (kind, k, m)
    assert (policy.zones, policy.encrypt) == (1, False)
    assert str(policy) == shown
    assert parse_policy(str(policy)) == policy


@pytest.mark.parametrize(
    "text",
    [
        "0+2", "17+1", "4+9", "4+-1", "replica:0", "replica:9", "0x", "9x",
        "", "4", "4+", "+2", "ec:4", "ec:4+2+1", "raid5", "replica:3x", "4 + 2", "ec:４+2",
    ],
)  # fmt: skip
def test_parse_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_policy(text)


@pytest.mark.parametrize(
    ("text", "width", "write_quorum", "read_need"),
    [
        ("4+2", 6, 5, 4),
        ("2+1", 3, 3, 2),
        ("8+4", 12, 9, 8),
        ("1+0", 1, 1, 1),
        ("3+0", 3, 3, 3),
        ("replica:3", 3, 2, 1),
        ("replica:1", 1, 1, 1),
    ],
)
def test_quorum_arithmetic(text: str, width: int, write_quorum: int, read_need: int) -> None:
    policy = parse_policy(text)
    assert (policy.width, policy.write_quorum, policy.read_need) == (
        width,
        write_quorum,
        read_need,
    )


@given(
    policy=st.one_of(
        st.builds(
            StoragePolicy,
            kind=st.just("ec"),
            k=st.integers(1, 16),
            m=st.integers(0, 8),
            zones=st.integers(1, 5),
            encrypt=st.booleans(),
        ),
        st.builds(
            StoragePolicy,
            kind=st.just("replica"),
            k=st.just(1),
            m=st.integers(0, 7),
            zones=st.integers(1, 5),
            encrypt=st.booleans(),
        ),
    )
)
def test_dict_round_trip_through_json(policy: StoragePolicy) -> None:
    again = StoragePolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again == policy
    # a quorum write leaves the block readable after one more shard is lost (when m > 0)
    if policy.m > 0:
        assert policy.write_quorum - 1 >= policy.read_need
    assert policy.read_need <= policy.write_quorum <= policy.width


def test_from_dict_defaults_and_errors() -> None:
    assert StoragePolicy.from_dict({"kind": "ec", "k": 2, "m": 1}) == StoragePolicy("ec", 2, 1)
    for bad in (
        {"kind": "ec", "k": 2},
        {"kind": "erasure", "k": 2, "m": 1},
        {"kind": "ec", "k": "2", "m": 1},
        {"kind": "ec", "k": 2, "m": 1, "zones": 0},
        {"kind": "ec", "k": 2, "m": 1, "encrypt": "yes"},
        {"kind": "replica", "k": 2, "m": 1},
        {"kind": "ec", "k": True, "m": 1},
    ):
        with pytest.raises(ValueError):
            StoragePolicy.from_dict(bad)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        StoragePolicy("ec", 0, 2)
    with pytest.raises(ValueError):
        StoragePolicy("ec", 4, 9)
    with pytest.raises(ValueError):
        StoragePolicy("replica", 1, 8)


def test_policies_are_hashable_values() -> None:
    assert len({parse_policy("4+2"), parse_policy("ec:4+2"), StoragePolicy("ec", 4, 2)}) == 1
    assert StoragePolicy("ec", 4, 2, encrypt=True) != StoragePolicy("ec", 4, 2)


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [(0, "ec:1+0"), (1, "ec:1+0"), (2, "ec:1+0"), (3, "ec:2+1"), (5, "ec:2+1"),
     (6, "ec:4+2"), (100, "ec:4+2")],
)  # fmt: skip
def test_default_policy_by_cluster_size(nodes: int, expected: str) -> None:
    policy = default_policy(nodes)
    assert str(policy) == expected
    # the default never asks for more shards than there are nodes to hold them
    assert policy.width <= max(nodes, 1)


def test_default_policy_rejects_negative() -> None:
    with pytest.raises(ValueError):
        default_policy(-1)
