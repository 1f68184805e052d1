"""Concurrent small calls to one node share one request.

While a request to a node is in flight, new calls for that node queue up; when it
returns, everything queued goes out as the next single request. An idle node sees no
added latency (a lone call is sent on the next loop iteration); a busy one sees far
fewer, larger requests — the RPC-level twin of the store's group commit. The node
applies a batched ``meta/put`` in one WriteBatch, in order, so last-writer-wins holds
within a batch as across batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 256  # items per request


class Coalescer(Generic[T, R]):
    def __init__(self, send: Callable[[str, list[T]], Awaitable[list[R]]]) -> None:
        self._send = send
        self._queues: dict[str, list[tuple[list[T], asyncio.Future[list[R]]]]] = {}
        self._busy: set[str] = set()

    async def call(self, api: str, items: list[T]) -> list[R]:
        """Results for ``items`` (one per item), sent alone or with other callers' items."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(api, []).append((items, future))
        if api not in self._busy:
            self._busy.add(api)
            asyncio.ensure_future(self._drain(api))
        return await future

    async def _drain(self, api: str) -> None:
        try:
            while queue := self._queues.get(api):
                batch, size = [], 0
                while queue and (not batch or size + len(queue[0][0]) <= MAX_BATCH):
                    items, future = queue.pop(0)
                    batch.append((items, future))
                    size += len(items)
                await self._flush(api, batch)
        finally:
            self._busy.discard(api)
            if not self._queues.get(api):
                self._queues.pop(api, None)

    async def _flush(self, api: str, batch: list[tuple[list[T], asyncio.Future[list[R]]]]
                     ) -> None:
        try:
            results = await self._send(api, [i for items, _ in batch for i in items])
        except Exception as exc:  # every caller in the batch sees the node's failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        offset = 0
        for items, future in batch:
            if not future.done():  # a caller that gave up (hedged read) is skipped
                future.set_result(results[offset : offset + len(items)])
            offset += len(items)
