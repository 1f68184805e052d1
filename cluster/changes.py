"""Which metadata records a node has taken in since its background work last looked.

The store records every key a ``meta_put`` applied. Two readers use it:

* the digest cache (cluster.store): ``generation`` moves on every applied write, so a
  digest computed at one generation is still true at the same generation;
* the repairer (cluster.repair): ``take`` hands over the keys changed since the last
  take, per partition, so a pass on an unchanged cluster probes only those records
  instead of every shard of every object.

Memory is bounded: past ``limit`` keys, a partition's keys are dropped and the partition
is reported as *overflowed* (the reader walks all of it).
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster.layout import partition_of

LIMIT = 100_000  # keys held across partitions; ~100 bytes each


class MetaChanges:
    """Keys of applied metadata writes, per partition, since the last ``take``.

    Used from the node's event loop only (``meta_put`` records after its batch commits).
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.generation = 0
        self._keys: dict[str, set[str]] = {}
        self._count = 0
        self._overflowed: set[str] = set()

    def record(self, keys: Iterable[str]) -> None:
        """Note keys whose writes are committed: call after the write, never before, so
        a reader that sees the old generation cannot have missed a write."""
        self.generation += 1
        for key in keys:
            part = partition_of(key)
            if part is None or part in self._overflowed:
                continue
            held = self._keys.setdefault(part, set())
            if key in held:
                continue
            if self._count >= self.limit:
                self._count -= len(self._keys.pop(part))
                self._overflowed.add(part)
                continue
            held.add(key)
            self._count += 1

    def take(self) -> tuple[dict[str, set[str]], set[str]]:
        """(changed keys per partition, overflowed partitions) since the last take."""
        keys, overflowed = self._keys, self._overflowed
        self._keys, self._overflowed, self._count = {}, set(), 0
        return keys, overflowed
