"""cluster.hotshards: the in-memory LRU of shards that span reads asked for."""

from __future__ import annotations

from cluster.hotshards import HotShards


def test_least_recently_read_leave_first_within_the_budget() -> None:
    hot = HotShards(budget=4000)
    for i in range(4):
        hot.offer(b"k%d" % i, bytes(900), bytes(32), hot.generation)
    assert hot.get(b"k0") is not None  # k0 is now the most recently read
    hot.offer(b"k4", bytes(900), bytes(32), hot.generation)
    assert hot.bytes <= 4000
    assert hot.get(b"k1") is None and hot.get(b"k0") is not None and hot.get(b"k4") is not None
    hot.offer(b"big", bytes(1001), b"", hot.generation)  # over a quarter of the budget
    assert hot.get(b"big") is None


def test_a_read_that_began_before_a_write_is_not_kept() -> None:
    hot = HotShards(budget=4000)
    began = hot.generation
    hot.offer(b"a", bytes(10), b"", began)
    hot.forget([b"a", b"absent"])
    assert hot.get(b"a") is None and hot.bytes == 0
    hot.offer(b"a", bytes(10), b"", began)  # read from disk before the forget: refused
    assert hot.get(b"a") is None
    hot.offer(b"a", bytes(10), b"", hot.generation)
    assert hot.get(b"a") == (bytes(10), b"")
