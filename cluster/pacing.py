"""A byte-rate limit for background work, so foreground traffic keeps its share.

``await pacer.spend(n)`` returns once ``n`` more bytes fit in the budget of ``rate``
bytes per second, averaged since the pacer was last idle (an idle pacer does not bank
credit beyond one ``burst``). A rate of 0 or less means unlimited.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    def __init__(self, rate: float, burst: float = 1 << 20) -> None:
        self.rate = rate
        self.burst = burst
        self._next = time.monotonic()  # when the budget is back to zero debt

    async def spend(self, nbytes: int) -> None:
        """Account for ``nbytes`` of work just done; sleep if it went over the rate."""
        if self.rate <= 0 or nbytes <= 0:
            return
        now = time.monotonic()
        self._next = max(self._next, now - self.burst / self.rate) + nbytes / self.rate
        if self._next > now:
            await asyncio.sleep(self._next - now)
