"""The gateway's shared budget for block bytes in flight (gateway/budget.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.budget import ByteBudget


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_takes_what_fits_and_waits_for_the_rest():
    async def body() -> None:
        budget = ByteBudget(10)
        assert await budget.acquire(6) == 6
        assert await budget.acquire(4) == 4
        waiter = asyncio.ensure_future(budget.acquire(3))
        await settle()
        assert not waiter.done() and budget.waiting == 1 and budget.used == 10
        budget.release(4)
        assert await waiter == 3
        assert budget.used == 9 and budget.waiting == 0

    run(body())


def test_waiters_are_served_in_arrival_order():
    """A large block waiting for room is not overtaken by small ones that would fit."""

    async def body() -> None:
        budget = ByteBudget(8)
        await budget.acquire(6)
        order: list[str] = []

        async def want(name: str, size: int) -> None:
            await budget.acquire(size)
            order.append(name)

        large = asyncio.ensure_future(want("large", 8))
        await settle()
        small = asyncio.ensure_future(want("small", 1))  # 6 + 1 fits, but large was first
        await settle()
        assert order == []
        budget.release(6)
        await settle()
        assert order == ["large"] and large.done() and not small.done()
        budget.release(8)
        await settle()
        assert order == ["large", "small"] and budget.used == 1

    run(body())


def test_a_block_larger_than_the_budget_takes_all_of_it():
    async def body() -> None:
        budget = ByteBudget(4)
        taken = await budget.acquire(10)
        assert taken == 4 and budget.used == 4
        budget.release(taken)
        assert budget.used == 0

    run(body())


def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_in():
    async def body() -> None:
        budget = ByteBudget(8)
        await budget.acquire(5)
        blocked = asyncio.ensure_future(budget.acquire(8))  # needs everything
        await settle()
        behind = asyncio.ensure_future(budget.acquire(3))  # fits, but queued behind it
        await settle()
        assert not behind.done() and budget.waiting == 2
        blocked.cancel()
        await settle()
        assert behind.done() and budget.used == 8 and budget.waiting == 0

    run(body())


def test_a_waiter_cancelled_after_its_grant_gives_the_bytes_back():
    async def body() -> None:
        budget = ByteBudget(8)
        await budget.acquire(8)
        waiter = asyncio.ensure_future(budget.acquire(8))
        await settle()
        budget.release(8)  # granted: its future is done, its task has not run yet
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert budget.used == 0 and budget.waiting == 0

    run(body())


def test_an_empty_budget_is_refused():
    with pytest.raises(ValueError):
        ByteBudget(0)


def test_a_release_just_after_a_cancel_passes_over_the_cancelled_waiter():
    async def body() -> None:
        budget = ByteBudget(8)
        await budget.acquire(8)
        blocked = asyncio.ensure_future(budget.acquire(8))
        await settle()
        behind = asyncio.ensure_future(budget.acquire(2))
        await settle()
        blocked.cancel()  # its future is cancelled at once; its task runs later
        budget.release(8)
        await settle()
        assert blocked.cancelled() and behind.done()
        assert budget.used == 2 and budget.waiting == 0

    run(body())


def test_try_acquire_takes_only_what_fits_now_and_never_jumps_the_queue():
    async def body() -> None:
        budget = ByteBudget(8)
        assert budget.try_acquire(5) == 5
        assert budget.try_acquire(4) is None  # 9 > 8: nothing taken
        assert budget.used == 5
        waiter = asyncio.ensure_future(budget.acquire(6))
        await settle()
        assert budget.try_acquire(1) is None  # it would fit, but someone waits first
        budget.release(5)
        await waiter
        assert budget.try_acquire(2) == 2 and budget.used == 8
        assert budget.try_acquire(100) is None

    run(body())
