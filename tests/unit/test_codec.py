"""placement.codec: round trips, decoding from any k shards, errors, shard hashes."""

from __future__ import annotations

import itertools
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement.codec import BLOCK_SIZE, BlockCodec, NotEnoughShards, codec_for, shard_hash
from placement.policy import StoragePolicy, parse_policy

POLICIES = ["1+0", "2+1", "4+2", "3+0", "replica:3", "8+4"]
MIB = 1024 * 1024


def block_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@settings(max_examples=120, deadline=None)
@given(
    text=st.sampled_from(POLICIES),
    size=st.one_of(st.integers(1, 64), st.integers(1, 200_000)),
    seed=st.integers(0, 2**32),
    data=st.data(),
)
def test_round_trip_from_any_k_shards(text: str, size: int, seed: int, data: st.DataObject) -> None:
    codec = codec_for(parse_policy(text))
    policy = codec.policy
    block = block_of(size, seed)
    shards = codec.encode(block)
    assert len(shards) == policy.width
    assert all(isinstance(s, bytes) for s in shards)
    assert codec.decode(dict(enumerate(shards)), size) == block
    chosen = data.draw(st.lists(st.integers(0, policy.width - 1), min_size=policy.k, unique=True))
    assert codec.decode({i: shards[i] for i in chosen}, size) == block


@settings(max_examples=12, deadline=None)
@given(text=st.sampled_from(POLICIES), size=st.integers(1, 5 * MIB), seed=st.integers(0, 99))
def test_round_trip_random_sizes_up_to_5_mib(text: str, size: int, seed: int) -> None:
    codec = codec_for(parse_policy(text))
    k, width = codec.policy.k, codec.policy.width
    block = block_of(size, seed)
    shards = codec.encode(block)
    assert codec.decode({i: shards[i] for i in range(width - k, width)}, size) == block


@pytest.mark.parametrize("text", POLICIES)
@pytest.mark.parametrize("size", [BLOCK_SIZE, BLOCK_SIZE - 1, 5 * MIB + 3])
def test_round_trip_big_blocks(text: str, size: int) -> None:
    codec = codec_for(parse_policy(text))
    k, width = codec.policy.k, codec.policy.width
    block = block_of(size, size)
    shards = codec.encode(memoryview(block))
    assert codec.decode({i: shards[i] for i in range(k)}, size) == block
    # the subset that leans hardest on parity, handed over as memoryviews
    last = {i: memoryview(shards[i]) for i in range(width - k, width)}
    assert codec.decode(last, size) == block


@pytest.mark.parametrize("text", ["2+1", "4+2"])
@pytest.mark.parametrize("size", [1, 5, 4099])
def test_every_combination_of_shards_decodes(text: str, size: int) -> None:
    codec = codec_for(parse_policy(text))
    k, width = codec.policy.k, codec.policy.width
    block = block_of(size, 7)
    shards = codec.encode(bytearray(block))
    for count in range(k, width + 1):
        for combo in itertools.combinations(range(width), count):
            assert codec.decode({i: shards[i] for i in combo}, size) == block, combo


def test_every_supported_shape_decodes_from_parity() -> None:
    block = block_of(1000, 3)
    for k in range(1, 17):
        for m in range(1, 9):
            codec = BlockCodec(StoragePolicy("ec", k, m))
            shards = codec.encode(block)
            assert len(shards) == k + m
            picked = {i: shards[i] for i in range(m, k + m)}
            assert codec.decode(picked, len(block)) == block, (k, m)


@pytest.mark.parametrize("text", POLICIES)
def test_fewer_than_k_shards_raise_not_enough(text: str) -> None:
    codec = codec_for(parse_policy(text))
    k, width = codec.policy.k, codec.policy.width
    shards = codec.encode(block_of(1000))
    for combo in itertools.combinations(range(width), k - 1):
        with pytest.raises(NotEnoughShards):
            codec.decode({i: shards[i] for i in combo}, 1000)
    assert issubclass(NotEnoughShards, ValueError)


def test_split_without_parity_is_nearly_even_and_plain() -> None:
    codec = codec_for(parse_policy("3+0"))
    for size in (1, 2, 3, 10, 1000, BLOCK_SIZE + 1):
        block = block_of(size, size)
        shards = codec.encode(block)
        lengths = [len(s) for s in shards]
        assert sum(lengths) == size
        assert max(lengths) - min(lengths) <= 1
        assert b"".join(shards) == block


def test_replicas_are_the_whole_block() -> None:
    block = block_of(12345)
    shards = codec_for(parse_policy("replica:3")).encode(block)
    assert shards == [block] * 3


def test_data_shards_are_checked_against_their_headers() -> None:
    codec = codec_for(parse_policy("4+2"))
    block = block_of(100_000)
    s = codec.encode(block)
    with pytest.raises(ValueError, match="fragment"):  # shards 0 and 1 swapped
        codec.decode({0: s[1], 1: s[0], 2: s[2], 3: s[3]}, len(block))
    with pytest.raises(ValueError):  # block size disagrees with the fragments
        codec.decode({0: s[0], 1: s[1], 2: s[2], 3: s[3]}, len(block) - 1)
    with pytest.raises(ValueError):  # truncated data shard
        codec.decode({0: s[0], 1: s[1][:-5], 2: s[2], 3: s[3]}, len(block))
    with pytest.raises(ValueError):  # truncated shard on the parity path
        codec.decode({0: s[0], 1: s[1][:-5], 2: s[2], 4: s[4]}, len(block))


@pytest.mark.parametrize("text", POLICIES)
def test_bad_arguments(text: str) -> None:
    codec = codec_for(parse_policy(text))
    shards = codec.encode(b"abc")
    with pytest.raises(ValueError):
        codec.encode(b"")
    with pytest.raises(ValueError):
        codec.decode({codec.policy.width: shards[0], **dict(enumerate(shards))}, 3)
    with pytest.raises(ValueError):
        codec.decode(dict(enumerate(shards)), 0)
    if codec.policy.kind == "replica" or codec.policy.m == 0:
        with pytest.raises(ValueError):  # plain pieces and replicas are length-checked
            codec.decode(dict(enumerate(shards)), 4)


@pytest.mark.parametrize("text", POLICIES)
def test_corrupted_shard_is_detected_by_its_hash(text: str) -> None:
    codec = codec_for(parse_policy(text))
    shards = codec.encode(block_of(70_000, 1))
    hashes = [shard_hash(s) for s in shards]
    rng = random.Random(5)
    for index, shard in enumerate(shards):
        bad = bytearray(shard)
        bad[rng.randrange(len(bad))] ^= 1 << rng.randrange(8)
        assert shard_hash(bad) != hashes[index]
        assert shard_hash(memoryview(bytes(shard))) == hashes[index]


def test_shard_hash_is_blake3_hex() -> None:
    assert shard_hash(b"") == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    digest = shard_hash(b"shard")
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_codec_for_is_cached_per_policy() -> None:
    assert codec_for(parse_policy("4+2")) is codec_for(StoragePolicy("ec", 4, 2))
    encrypted = codec_for(StoragePolicy("ec", 4, 2, encrypt=True))
    assert encrypted.policy.encrypt
    # same shape, same shard format
    block = block_of(999)
    assert encrypted.encode(block) == codec_for(parse_policy("4+2")).encode(block)


@settings(max_examples=40, deadline=None)
@given(policy=st.sampled_from(["1+0", "2+1", "3+0", "4+2", "5+3", "8+4", "replica:3"]),
       size=st.integers(min_value=1, max_value=300_000))
def test_data_shards_are_plain_slices_of_the_block(policy, size):
    """Range reads rely on it: data shard i holds exactly block[data_slices[i]]."""
    codec = codec_for(parse_policy(policy))
    block = os.urandom(size)
    shards = codec.encode(block)
    slices = codec.data_slices(size)
    assert slices[0][0] == 0 and max(b for _, b in slices) == size
    for i, (a, b) in enumerate(slices):
        spans = codec.payload_spans(i, size, 0, size)
        fetched = b"".join(shards[i][x:y] for x, y in spans)  # what the node sends
        assert bytes(codec.payload_of_spans(i, fetched, size)) == block[a:b]


@settings(max_examples=40, deadline=None)
@given(policy=st.sampled_from(["2+1", "4+2", "8+4", "replica:3", "3+0"]),
       size=st.integers(min_value=1, max_value=300_000), data=st.data())
def test_a_range_reads_back_from_the_spans_of_the_shards_it_covers(policy, size, data):
    codec = codec_for(parse_policy(policy))
    block = os.urandom(size)
    shards = codec.encode(block)
    lo = data.draw(st.integers(0, size - 1))
    hi = data.draw(st.integers(lo + 1, size))
    got = b""
    for i, (a, b) in enumerate(codec.data_slices(size)):
        if a < hi and b > lo:
            spans = codec.payload_spans(i, size, lo, hi)
            got += bytes(codec.payload_of_spans(
                i, b"".join(shards[i][x:y] for x, y in spans), size))
    assert got == block[lo:hi]


def test_spans_from_another_fragment_are_refused():
    codec = codec_for(parse_policy("4+2"))
    shards = codec.encode(block_of(100_000))
    spans = codec.payload_spans(1, 100_000, 0, 10)
    with pytest.raises(ValueError):
        codec.payload_of_spans(1, b"".join(shards[2][x:y] for x, y in spans), 100_000)


@pytest.mark.parametrize("text", POLICIES)
@pytest.mark.parametrize("size", [1, 4099, BLOCK_SIZE])
def test_data_views_are_the_block_without_a_copy(text: str, size: int) -> None:
    codec = codec_for(parse_policy(text))
    k, width = codec.policy.k, codec.policy.width
    block = block_of(size, size)
    shards = codec.encode(block)
    views = codec.data_views(dict(enumerate(shards)), size)
    assert views is not None and b"".join(views) == block
    # each view lies in the shard it came from: sending them on copies nothing
    assert all(any(v.obj is s for s in shards) for v in views)
    if width > k and codec.policy.kind != "replica":
        # a missing data shard needs the parity math: only decode can answer
        assert codec.data_views({i: shards[i] for i in range(1, k + 1)}, size) is None
        assert codec.decode({i: shards[i] for i in range(1, k + 1)}, size) == block
