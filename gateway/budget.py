"""Budgets a gateway process shares among its requests: block bytes being written, and
blocks read ahead of what a GET has sent.

Each upload already keeps at most ``blockstore.PIPELINE`` blocks in flight, but that
bound is per upload: sixteen concurrent 64 MiB PUTs took a gateway to 354 MiB, and a
container's memory limit would have been met by concurrency, not by object size. The
budget is shared by every upload in the process; an upload that finds it spent stops
reading its body until a block of some upload is stored, so TCP pushes back on its client.

Waiters are served first come, first served, so a large block waiting for room is not
overtaken forever by a stream of small ones.

Reads never wait: a GET fetches the block after the one it is sending only if the
read-ahead budget has room (``try_acquire``), else it fetches each block when its turn
comes. Read-ahead is worth ~7 % to a lone 64 MiB GET and nothing to eight at once (827-848
MiB/s with it, 822-840 without), while it held a block per stream: eight concurrent
64 MiB GETs took a gateway to 196-223 MiB with it, 159-161 without. A GET stalled by a slow
client holds only the block it is sending beyond its share of the budget, so slow
readers cannot take read-ahead from fast ones forever, nor make them wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

MiB = 1024 * 1024
# Six 4 MiB blocks are what two large PUTs at full speed keep in flight (three each);
# two more leave room for the small uploads beside them. Each block byte is held about
# 2.5 times at the peak (the block, then its 1.5x of 4+2 shards), so ~80 MiB at most.
WRITE_BUDGET = 32 * MiB
# Four 4 MiB blocks: two large GETs read ahead with room to spare.
READ_AHEAD_BUDGET = 16 * MiB


class ByteBudget:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a budget needs at least one byte, got {limit}")
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_acquire(self, size: int) -> int | None:
        """Take ``size`` bytes now if they fit and nobody is waiting (see ``acquire``);
        None if not."""
        size = min(size, self.limit)
        if self._waiters or self.used + size > self.limit:
            return None
        self.used += size
        return size

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes fit, take them, and return what was taken (a block
        larger than the whole budget takes all of it) for ``release``."""
        size = min(size, self.limit)
        if self.try_acquire(size) is not None:
            return size
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(size)  # granted just as the waiter was cancelled
            else:
                with contextlib.suppress(ValueError):  # _wake may have dropped it
                    self._waiters.remove(entry)
                self._wake()  # the next waiter may fit now that this one is gone
            raise
        return size

    @property
    def waiting(self) -> int:
        """Callers waiting for room (uploads holding a block they cannot send yet)."""
        return len(self._waiters)

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if future.done():  # cancelled; its waiter has not run yet to leave the queue
                self._waiters.popleft()
                continue
            if self.used + size > self.limit:
                return
            self._waiters.popleft()
            self.used += size
            future.set_result(None)
