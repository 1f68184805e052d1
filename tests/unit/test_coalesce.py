import asyncio

import pytest

from cluster.coalesce import MAX_BATCH, Coalescer


class Node:
    """A stand-in transport (not a Shoal component): records each request it is sent."""

    def __init__(self, delay: float = 0.01, fail: bool = False) -> None:
        self.requests: list[tuple[str, list[int]]] = []
        self.delay, self.fail = delay, fail

    async def send(self, api: str, items: list[int]) -> list[int]:
        self.requests.append((api, list(items)))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("node down")
        return [i * 10 for i in items]


def test_concurrent_calls_share_requests_and_get_their_own_results():
    async def main():
        node = Node()
        c = Coalescer(node.send)
        results = await asyncio.gather(*(c.call("a", [i, i + 100]) for i in range(50)))
        assert results == [[i * 10, (i + 100) * 10] for i in range(50)]
        assert len(node.requests) < 50  # coalesced
        assert sum(len(items) for _, items in node.requests) == 100
        assert all(len(items) <= MAX_BATCH for _, items in node.requests)

    asyncio.run(main())


def test_nodes_are_batched_separately_and_a_lone_call_goes_alone():
    async def main():
        node = Node()
        c = Coalescer(node.send)
        assert await c.call("a", [1]) == [10]
        await asyncio.gather(c.call("a", [2]), c.call("b", [3]))
        assert {api for api, _ in node.requests[1:]} == {"a", "b"}
        assert node.requests[0] == ("a", [1])

    asyncio.run(main())


def test_failure_reaches_every_caller_in_the_batch_and_the_next_batch_still_runs():
    async def main():
        node = Node(fail=True)
        c = Coalescer(node.send)
        results = await asyncio.gather(*(c.call("a", [i]) for i in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        node.fail = False
        assert await c.call("a", [7]) == [70]

    asyncio.run(main())


def test_a_cancelled_caller_does_not_disturb_the_others():
    async def main():
        node = Node(delay=0.05)
        c = Coalescer(node.send)
        first = asyncio.ensure_future(c.call("a", [1]))
        await asyncio.sleep(0)  # first is in flight; the next two queue behind it
        gone = asyncio.ensure_future(c.call("a", [2]))
        kept = asyncio.ensure_future(c.call("a", [3]))
        await asyncio.sleep(0)
        gone.cancel()
        assert await first == [10] and await kept == [30]
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(main())
