"""Shards that range reads asked for recently, kept in memory (LRU, bounded in bytes).

Range GETs of a hot object (a video being seeked through, the range benchmark) read
64 KiB spans of the same few 1 MiB shards again and again. RocksDB returns a value only
whole, so each span read copied the whole shard out of the blob file and into Python:
~0.7 ms of the ~1 ms a node spent per span read. A hit here is a dictionary lookup and
the span's own chunk check, on the event loop.

Only span reads use it; whole-shard reads (GETs of whole blocks, scrub, repair) read
the disk, so a cache cannot hide rot from the scrubber. Entries keep the stored value
and its chunk digests, and the reader checks the chunks under each span on every hit,
as it does for bytes from disk.

A write or delete of any shard moves ``generation``, and a value read from disk is
kept only if the generation did not move while it was being read; ``forget`` also drops
the keys it is given. So a read that raced a delete cannot bring the shard back.
"""

from __future__ import annotations

from collections import OrderedDict

BUDGET = 32 << 20  # bytes per node: a 64 MiB object's data shards spread over 6 nodes fit


class HotShards:
    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.bytes = 0
        self.generation = 0
        self._items: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()

    def get(self, key: bytes) -> tuple[bytes, bytes] | None:
        """(stored value, chunk digests) of a shard, or None."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def offer(self, key: bytes, value: bytes, digests: bytes, generation: int) -> None:
        """Keep a shard read from disk when no write or delete happened since
        ``generation`` was taken; the least recently read make room."""
        size = len(value) + len(digests)
        if generation != self.generation or size > self.budget // 4 or key in self._items:
            return
        self._items[key] = (value, digests)
        self.bytes += size
        while self.bytes > self.budget:
            _, (old, old_digests) = self._items.popitem(last=False)
            self.bytes -= len(old) + len(old_digests)

    def forget(self, keys: list[bytes]) -> None:
        """Shards were written or deleted: drop them, and refuse reads that began before."""
        self.generation += 1
        for key in keys:
            found = self._items.pop(key, None)
            if found is not None:
                self.bytes -= len(found[0]) + len(found[1])
