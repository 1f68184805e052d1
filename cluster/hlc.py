"""Hybrid logical clock: the timestamp every metadata record carries.

A timestamp is ``[physical_ms, logical, origin]``. Compared as a tuple it gives a total
order that respects causality within one origin and stays close to wall time across
origins; ``origin`` (the writer's name) breaks ties, so two writers never produce equal
stamps. Last-writer-wins on these stamps is the whole conflict story for metadata:
``newer`` is that rule, for the stores, the replicator and anti-entropy alike. It lives
here, not in cluster.store, so a gateway merging owners' answers does not load RocksDB.
"""

from __future__ import annotations

import json
import time

Stamp = list  # [int, int, str]; a list because it round-trips through JSON unchanged


class HybridClock:
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._ms = 0
        self._logical = 0

    def now(self) -> Stamp:
        """A stamp greater than every stamp this clock issued or observed."""
        wall = int(time.time() * 1000)
        if wall > self._ms:
            self._ms, self._logical = wall, 0
        else:
            self._logical += 1
        return [self._ms, self._logical, self.origin]

    def observe(self, stamp: Stamp) -> None:
        """Move past a stamp seen from elsewhere, so our next write orders after it."""
        ms, logical = int(stamp[0]), int(stamp[1])
        if (ms, logical) > (self._ms, self._logical):
            self._ms, self._logical = ms, logical


def hlc_of(record: dict) -> tuple[int, int, str]:
    """The record's hybrid logical clock as a comparable tuple; ValueError if malformed."""
    hlc = record.get("hlc") if isinstance(record, dict) else None
    if (
        not isinstance(hlc, list | tuple)
        or len(hlc) != 3
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in hlc[:2])
        or not isinstance(hlc[2], str)
    ):
        raise ValueError(f"record needs hlc [physical_ms:int, logical:int, origin:str], got {hlc!r}")
    return (hlc[0], hlc[1], hlc[2])


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def newer(a: dict, b: dict | None) -> bool:
    """Last-writer-wins: True when record ``a`` should replace ``b`` (None = absent).

    Records are ordered by hlc tuple. Two different records with the same hlc should not
    exist (the origin is part of the clock), but if they do the canonical JSON breaks the
    tie, so every replica picks the same winner whatever order it saw them in. The order
    is strict: ``newer(a, a)`` is False, so re-applying a record is a no-op.
    """
    ha = hlc_of(a)
    if b is None:
        return True
    hb = hlc_of(b)
    if ha != hb:
        return ha > hb
    if a == b:  # the usual tie: the same record from two replicas
        return False
    return _canonical(a) > _canonical(b)
