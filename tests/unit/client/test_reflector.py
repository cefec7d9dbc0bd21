"""client/_reflector.py against an in-memory ResourceClient fake: list then
watch from the list's resourceVersion with bookmarks, resume from the last
resourceVersion (bookmarks included) when a watch ends, back off and
re-watch without relisting on retryable errors, relist on Gone/Expired and
on anything unexpected, and never spin on a server that hangs up. Backoff
runs on a FakeClock with the jitter pinned."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from api import FakeClock
from client import Backoff, Indexer, Reflector
from proto import core_pb2

from .conftest import Advance, Settle
from .fakes import HANG, FakeResourceClient, error


@pytest.fixture
def fake() -> FakeResourceClient:
    fake = FakeResourceClient()
    fake.put("a", v="1")
    fake.put("b", v="1")
    return fake


@pytest.fixture
def store() -> Indexer[core_pb2.ConfigMap]:
    return Indexer()


@pytest.fixture
async def reflector(fake: FakeResourceClient, store: Indexer[core_pb2.ConfigMap], clock: FakeClock,
                    settle: Settle) -> AsyncIterator[Reflector[core_pb2.ConfigMap]]:
    r = Reflector(fake, store, clock=clock, backoff=Backoff(0.8, 30, clock=clock, rand=lambda: 0.0),
                  watch_timeout=300, rand=lambda: 0.0)
    task = asyncio.create_task(r.run())
    await settle()
    yield r
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def keys(store: Indexer[core_pb2.ConfigMap]) -> list[str]:
    return sorted(store.list_keys())


async def test_lists_then_watches_from_the_list_revision(
        fake: FakeResourceClient, store: Indexer[core_pb2.ConfigMap], reflector: Reflector[core_pb2.ConfigMap],
        settle: Settle) -> None:
    assert keys(store) == ["ns/a", "ns/b"]
    assert fake.watches == [{"resource_version": "3", "bookmarks": True, "timeout_seconds": 300}]
    fake.script(fake.event("ADDED", "c"), fake.event("MODIFIED", "a", v="2"), fake.event("DELETED", "b"),
                fake.bookmark(9), HANG)
    await settle()
    assert keys(store) == ["ns/a", "ns/c"]
    a = store.get_by_key("ns/a")
    assert a is not None and a.data["v"] == "2"
    assert reflector.last_sync_resource_version == "9"
    assert fake.lists == 1


async def test_a_watch_that_ends_resumes_from_the_last_bookmark(
        fake: FakeResourceClient, reflector: Reflector[core_pb2.ConfigMap], settle: Settle) -> None:
    fake.script(fake.event("ADDED", "c"), fake.bookmark(40))  # then the server ends the watch
    await settle()
    assert [w["resource_version"] for w in fake.watches] == ["3", "40"]
    assert fake.lists == 1


@pytest.mark.parametrize("reason", ["Gone", "Expired"])
async def test_gone_relists_and_watches_from_the_new_list(
        fake: FakeResourceClient, store: Indexer[core_pb2.ConfigMap], reflector: Reflector[core_pb2.ConfigMap],
        settle: Settle, reason: str) -> None:
    # Changes the reflector never saw as events, then history is compacted.
    fake.remove("a")
    fake.put("b", v="2")
    fake.put("d")
    fake.script(error(reason))
    await settle()
    assert fake.lists == reflector.lists == 2
    assert keys(store) == ["ns/b", "ns/d"]
    b = store.get_by_key("ns/b")
    assert b is not None and b.data["v"] == "2"
    assert fake.watches[-1]["resource_version"] == str(fake.revision)


@pytest.mark.parametrize("reason", ["ServiceUnavailable", "TooManyRequests", "Timeout", "InternalError"])
async def test_retryable_errors_back_off_and_rewatch_without_relisting(
        fake: FakeResourceClient, reflector: Reflector[core_pb2.ConfigMap], advance: Advance, reason: str) -> None:
    fake.script(fake.event("ADDED", "c"), error(reason))
    fake.script(error(reason))
    fake.script(HANG)
    await advance(0.75)
    assert len(fake.watches) == 1, "re-watched before the backoff"
    await advance(0.1)
    assert len(fake.watches) == 2
    await advance(1.5)
    assert len(fake.watches) == 2, "the second backoff did not double"
    await advance(0.2)
    assert len(fake.watches) == 3
    assert {w["resource_version"] for w in fake.watches[1:]} == {"4"}
    assert fake.lists == 1


async def test_unexpected_watch_errors_relist_after_a_backoff(
        fake: FakeResourceClient, reflector: Reflector[core_pb2.ConfigMap], advance: Advance) -> None:
    fake.script(error("Forbidden"))
    await advance(0.75)
    assert fake.lists == 1
    await advance(0.1)
    assert fake.lists == 2


async def test_a_failing_list_is_retried_with_backoff(clock: FakeClock, advance: Advance) -> None:
    fake = FakeResourceClient()
    fake.put("a")
    fake.list_errors = [error("ServiceUnavailable"), error("ServiceUnavailable")]
    store: Indexer[core_pb2.ConfigMap] = Indexer()
    r = Reflector(fake, store, clock=clock, backoff=Backoff(1.0, 30, clock=clock, rand=lambda: 0.0))
    task = asyncio.create_task(r.run())
    try:
        await advance(0.9)
        assert fake.lists == 0 and len(store) == 0 and not fake.watches
        await advance(2.0)  # 1 s, then 2 s
        assert fake.lists == 0
        await advance(0.2)
        assert fake.lists == 1 and keys(store) == ["ns/a"]
        assert len(fake.watches) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_server_that_keeps_hanging_up_is_not_hammered(
        fake: FakeResourceClient, reflector: Reflector[core_pb2.ConfigMap], advance: Advance) -> None:
    for _ in range(5):
        fake.script()  # ends at once with nothing
    await advance(0.75)
    assert len(fake.watches) == 1
    await advance(0.1)
    assert len(fake.watches) == 2
    await advance(1.5)
    assert len(fake.watches) == 2, "the backoff did not grow"
    await advance(0.2)
    assert len(fake.watches) == 3


def test_backoff_doubles_jitters_caps_and_resets(clock: FakeClock) -> None:
    rolls = iter([0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0])
    backoff = Backoff(1.0, 4.0, jitter=1.0, reset_after=60, clock=clock, rand=lambda: next(rolls))
    assert [backoff.next() for _ in range(4)] == [1.0, 3.0, 8.0, 4.0]  # 1, 2*1.5, 4*2, capped 4
    clock.step(61)
    assert backoff.next() == 1.0
    backoff.next()
    backoff.reset()
    assert backoff.next() == 1.0
