"""client/_workqueue.py: de-duplication, one worker per key, requeue on
done, FIFO order, add_after and add_rate_limited on a FakeClock (a 1000 s
backoff without sleeping), and shutting down."""

from __future__ import annotations

import asyncio

import pytest

from api import FakeClock
from client import DelayingQueue, ItemExponentialFailureRateLimiter, QueueShutDown, RateLimitingQueue, WorkQueue

from .conftest import Advance, Settle


async def test_duplicates_before_processing_are_processed_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "b", "a"):
        q.add(key)
    assert q.len() == len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert q.len() == 0


async def test_a_key_is_never_held_by_two_workers(settle: Settle) -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    first = await q.get()
    q.add("a")  # changed again while a worker holds it
    q.add("a")
    second = asyncio.create_task(q.get())
    await settle()
    assert not second.done(), "a second worker got a key that is being processed"
    assert q.len() == 0
    q.done(first)
    await settle()
    assert second.done() and second.result() == "a"
    q.done("a")
    assert q.len() == 0  # processed once more, not twice more


async def test_done_without_a_new_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.done(await q.get())
    assert q.len() == 0


async def test_waiting_workers_are_woken_one_key_each(settle: Settle) -> None:
    q: WorkQueue[str] = WorkQueue()
    workers = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.add("x")
    q.add("y")
    await settle()
    done = [w for w in workers if w.done()]
    assert sorted(w.result() for w in done) == ["x", "y"]
    q.shut_down()
    await settle()
    (left,) = [w for w in workers if w not in done]
    with pytest.raises(QueueShutDown):
        left.result()


async def test_a_cancelled_worker_does_not_swallow_a_key(settle: Settle) -> None:
    q: WorkQueue[str] = WorkQueue()
    waiting = asyncio.create_task(q.get())
    other = asyncio.create_task(q.get())
    await settle()
    q.add("a")  # wakes `waiting`...
    waiting.cancel()  # ...which is cancelled before it runs
    await settle()
    assert other.done() and other.result() == "a"


async def test_shut_down_drains_then_raises_and_drops_new_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.shut_down()
    assert q.shutting_down
    q.add("b")
    assert await q.get() == "a"
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shut_down_with_drain_waits_for_done(settle: Settle) -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    key = await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    q.done(key)
    await settle()
    assert drain.done()


async def test_add_after_waits_on_the_clock(clock: FakeClock, advance: Advance) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("now", 0)
    assert q.len() == 1 and q.waiting() == 1
    await advance(9.9, tick=0.1)
    assert q.len() == 1
    await advance(0.2)
    assert q.len() == 2 and q.waiting() == 0


async def test_add_after_keeps_the_earliest_time(clock: FakeClock, advance: Advance) -> None:
    q: DelayingQueue[str] = DelayingQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 2)   # sooner: moves it up
    q.add_after("a", 50)  # later: ignored
    assert q.waiting() == 1
    await advance(2.1, tick=0.1)
    assert q.len() == 1
    await advance(60, tick=1)
    assert q.len() == 1  # not added a second time
    assert await q.get() == "a"


async def test_rate_limited_retries_back_off_to_1000s(clock: FakeClock, advance: Advance) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    q.add("a")
    # A sync that keeps failing: 5 ms, 10 ms, 20 ms, ... until the 1000 s cap.
    for failure in range(22):
        key = await q.get()
        q.add_rate_limited(key)
        q.done(key)
        expected = min(0.005 * 2 ** failure, 1000.0)
        assert q.len() == 0
        clock.step(expected * 0.99)
        await advance(0)
        assert q.len() == 0, f"retry {failure} came before {expected}s"
        clock.step(expected * 0.02)
        await advance(0)
        assert q.len() == 1, f"retry {failure} did not come after {expected}s"
    assert q.num_requeues("a") == 22
    key = await q.get()
    q.forget(key)
    q.done(key)
    assert q.num_requeues("a") == 0


async def test_rate_limited_key_is_deduplicated_with_plain_adds(clock: FakeClock, advance: Advance) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter(1.0, 10.0), clock=clock)
    q.add_rate_limited("a")
    q.add("a")  # an informer event arrives meanwhile
    assert q.len() == 1
    assert await q.get() == "a"
    await advance(1.1)
    assert q.len() == 0  # the retry is held back while a worker has the key...
    q.done("a")
    assert q.len() == 1  # ...and queued once it is done


async def test_shut_down_abandons_waiting_keys(clock: FakeClock, advance: Advance) -> None:
    q: RateLimitingQueue[str] = RateLimitingQueue(clock=clock)
    q.add_after("a", 1)
    q.shut_down()
    assert q.waiting() == 0
    q.add_after("b", 1)
    q.add_rate_limited("c")
    await advance(5, tick=0.5)
    assert q.len() == 0
    assert not clock.has_sleepers()
