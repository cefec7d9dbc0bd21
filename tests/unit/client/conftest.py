"""Time for the client-library unit tests: a FakeClock, `settle` to let
every runnable task run, and `advance` to move the clock in ticks while the
tasks sleeping on it run (nothing here really sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from api import FakeClock

Settle = Callable[[], Awaitable[None]]
Advance = Callable[..., Awaitable[None]]


async def _settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settle() -> Settle:
    return _settle


@pytest.fixture
def advance(clock: FakeClock) -> Advance:
    async def step(seconds: float, tick: float = 0.05) -> None:
        await _settle()
        left = seconds
        while left > 1e-9:
            delta = min(tick, left)
            clock.step(delta)
            left -= delta
            await _settle()
    return step
