"""cluster.changes: the per-partition log of applied metadata keys."""

from __future__ import annotations

from cluster.changes import MetaChanges


def test_keys_are_grouped_by_partition_and_taken_once() -> None:
    log = MetaChanges()
    log.record(["o/photos/a.jpg", "p/photos/up1/3", "b/photos", "o/docs/x", "o/photos/a.jpg"])
    log.record(["not-a-layout-key"])
    assert log.generation == 2
    assert log.take() == ({"photos": {"o/photos/a.jpg", "p/photos/up1/3"},
                           "__buckets__": {"b/photos"}, "docs": {"o/docs/x"}}, set())
    assert log.take() == ({}, set())
    assert log.generation == 2  # taking is not a change


def test_past_the_limit_a_partition_is_reported_whole() -> None:
    log = MetaChanges(limit=3)
    log.record(["o/a/1", "o/a/2", "o/b/1"])
    log.record(["o/a/1"])  # already held: no room needed
    log.record(["o/b/2"])  # no room: partition b is dropped and reported overflowed
    log.record(["o/b/3", "o/c/1"])
    assert log.take() == ({"a": {"o/a/1", "o/a/2"}, "c": {"o/c/1"}}, {"b"})
    log.record(["o/b/4"])  # a fresh start after the take
    assert log.take() == ({"b": {"o/b/4"}}, set())
