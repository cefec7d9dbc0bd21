"""client/_informer.py against the in-memory ResourceClient fake: handlers
see adds, updates and deletes after the cache has them; a relist after Gone
turns vanished objects into DeletedFinalStateUnknown tombstones and changed
ones into updates; periodic resync re-delivers update(obj, obj); late
handlers catch up; a failing handler harms nobody; has_synced/wait_for_sync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api import FakeClock
from client import Backoff, DeletedFinalStateUnknown, Informer
from proto import core_pb2

from .conftest import Advance, Settle
from .fakes import HANG, FakeResourceClient, error

CM = core_pb2.ConfigMap


class Recorder:
    def __init__(self, informer: Informer[CM]) -> None:
        self.informer = informer
        self.seen: list[tuple[Any, ...]] = []

    def on_add(self, obj: CM) -> None:
        # The cache already holds what the handler is told about.
        assert self.informer.lister().get(obj.metadata.namespace, obj.metadata.name) is obj
        self.seen.append(("add", obj.metadata.name))

    def on_update(self, old: CM, new: CM) -> None:
        self.seen.append(("update", new.metadata.name, old.metadata.resourceVersion, new.metadata.resourceVersion))

    def on_delete(self, obj: CM | DeletedFinalStateUnknown[CM]) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.seen.append(("tombstone", obj.key, obj.obj.metadata.resourceVersion))
        else:
            assert obj.metadata.name not in {o.metadata.name for o in self.informer.lister().list()}
            self.seen.append(("delete", obj.metadata.name))


@pytest.fixture
def fake() -> FakeResourceClient:
    fake = FakeResourceClient()
    fake.put("a")
    return fake


@pytest.fixture
async def informer(fake: FakeResourceClient, clock: FakeClock) -> AsyncIterator[Informer[CM]]:
    inf = Informer(fake, resync=30, clock=clock, backoff=Backoff(0.8, 30, clock=clock, rand=lambda: 0.0))
    yield inf
    await inf.stop()


async def test_handlers_follow_the_watch(fake: FakeResourceClient, informer: Informer[CM], settle: Settle) -> None:
    rec = Recorder(informer)
    informer.add_event_handler(rec.on_add, rec.on_update, rec.on_delete)
    assert not informer.has_synced()
    informer.start()
    assert await informer.wait_for_sync(timeout=1)
    fake.script(fake.event("ADDED", "b"), fake.event("MODIFIED", "a", v="2"), fake.event("DELETED", "b"), HANG)
    await settle()
    assert rec.seen == [("add", "a"), ("add", "b"), ("update", "a", "2", "4"), ("delete", "b")]
    assert informer.last_sync_resource_version == "5"


async def test_relist_after_gone_reports_what_changed_meanwhile(
        fake: FakeResourceClient, informer: Informer[CM], settle: Settle) -> None:
    fake.put("changed")
    fake.put("same")
    rec = Recorder(informer)
    informer.add_event_handler(rec.on_add, rec.on_update, rec.on_delete)
    informer.start()
    await settle()
    rec.seen.clear()
    gone_rv = fake.objects["a"].metadata.resourceVersion
    fake.remove("a")  # deleted while the watch was down
    fake.put("c")
    fake.put("changed", v="2")
    fake.script(error("Gone"))
    fake.script(HANG)
    await settle()
    # Only differences are announced: nothing for "same".
    assert sorted(rec.seen) == sorted([("tombstone", "ns/a", gone_rv), ("add", "c"),
                                       ("update", "changed", "3", "7")])
    assert sorted(o.metadata.name for o in informer.lister().list()) == ["c", "changed", "same"]


async def test_resync_redelivers_every_cached_object(
        fake: FakeResourceClient, informer: Informer[CM], advance: Advance) -> None:
    fake.put("b")
    fake.script(HANG)
    updates: list[tuple[CM, CM]] = []
    informer.add_event_handler(on_update=lambda old, new: updates.append((old, new)))
    informer.start()
    await advance(29, tick=1)
    assert updates == []
    await advance(1.5, tick=0.5)
    assert sorted(new.metadata.name for _, new in updates) == ["a", "b"]
    assert all(old is new for old, new in updates)
    await advance(30, tick=1)
    assert len(updates) == 4


async def test_a_late_handler_gets_the_cache_as_adds(
        fake: FakeResourceClient, informer: Informer[CM], settle: Settle) -> None:
    fake.put("b")
    fake.script(HANG)
    informer.start()
    await settle()
    added: list[str] = []
    informer.add_event_handler(on_add=lambda obj: added.append(obj.metadata.name))
    assert sorted(added) == ["a", "b"]


async def test_a_failing_handler_does_not_stop_the_others(
        fake: FakeResourceClient, informer: Informer[CM], settle: Settle) -> None:
    def explode(obj: CM) -> None:
        raise RuntimeError("handler bug")

    added: list[str] = []
    informer.add_event_handler(on_add=explode)
    informer.add_event_handler(on_add=lambda obj: added.append(obj.metadata.name))
    informer.start()
    fake.script(fake.event("ADDED", "b"), HANG)
    await settle()
    assert added == ["a", "b"]
    assert sorted(informer.indexer.list_keys()) == ["ns/a", "ns/b"]


async def test_wait_for_sync_times_out_while_the_list_fails(
        fake: FakeResourceClient, informer: Informer[CM]) -> None:
    fake.list_errors = [error("ServiceUnavailable")] * 10
    informer.start()
    assert not await informer.wait_for_sync(timeout=0.05)
    assert not informer.has_synced()


async def test_stop_ends_the_tasks(fake: FakeResourceClient, informer: Informer[CM], settle: Settle,
                                   clock: FakeClock) -> None:
    fake.script(HANG)
    informer.start()
    informer.start()  # idempotent
    await settle()
    assert informer.started
    await informer.stop()
    assert not informer.started
    assert not clock.has_sleepers()
    assert all(t.done() for t in asyncio.all_tasks() if t is not asyncio.current_task())
