"""Hybrid logical clock: the timestamp every metadata record carries.

A timestamp is ``[physical_ms, logical, origin]``. Compared as a tuple it gives a total
order that respects causality within one origin and stays close to wall time across
origins; ``origin`` (the writer's name) breaks ties, so two writers never produce equal
stamps. Last-writer-wins on these stamps is the whole conflict story for metadata.
"""

from __future__ import annotations

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
