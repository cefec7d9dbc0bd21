"""The event recorder against a real apiserver: it creates core/v1 Events
with the involved object, source and timestamps filled in; repeats of the
same event aggregate into `count` and `lastTimestamp` on one Event; the
spam filter caps a flood at the burst; events about cluster-scoped objects
land in "default"; bad input is dropped without raising; and Events are
found by `involvedObject.name` field selector."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from api import FakeClock, rfc3339
from client import Clientset, EventBroadcaster
from proto import core_pb2

Event = core_pb2.Event


@pytest.fixture
async def configmap(client: Clientset, namespace: str) -> core_pb2.ConfigMap:
    obj = core_pb2.ConfigMap(data={"k": "v"})
    obj.metadata.name = "settings"
    return await client.resource(core_pb2.ConfigMap, namespace).create(obj)


@pytest.fixture
async def broadcaster(client: Clientset) -> AsyncIterator[EventBroadcaster]:
    b = EventBroadcaster(client, "test-controller", host="host-1")
    yield b
    await b.shutdown()


async def events_about(client: Clientset, namespace: str, name: str) -> list[Event]:
    """Events whose involvedObject is `name`, selected by the server."""
    found = (await client.resource(Event, namespace).list(field_selector=f"involvedObject.name={name}")).items
    assert all(e.involvedObject.name == name for e in found)
    return sorted(found, key=lambda e: e.metadata.name)


async def test_an_event_is_created_with_its_object_and_source(
        client: Clientset, namespace: str, configmap: core_pb2.ConfigMap, broadcaster: EventBroadcaster) -> None:
    broadcaster.new_recorder().event(configmap, "Normal", "Synced", "settings synced")
    assert await broadcaster.flush()
    (event,) = (await client.resource(Event, namespace).list()).items
    ref = event.involvedObject
    assert (ref.kind, ref.apiVersion, ref.namespace, ref.name) == ("ConfigMap", "v1", namespace, "settings")
    assert (ref.uid, ref.resourceVersion) == (configmap.metadata.uid, configmap.metadata.resourceVersion)
    assert (event.type, event.reason, event.message, event.count) == ("Normal", "Synced", "settings synced", 1)
    assert (event.source.component, event.source.host) == ("test-controller", "host-1")
    assert (event.reportingComponent, event.reportingInstance) == ("test-controller", "host-1")
    assert event.firstTimestamp and event.firstTimestamp == event.lastTimestamp
    assert re.fullmatch(r"settings\.[0-9a-f]{12,}", event.metadata.name)
    assert event.metadata.namespace == namespace


async def test_repeats_aggregate_into_one_event(client: Clientset, namespace: str,
                                                configmap: core_pb2.ConfigMap) -> None:
    clock = FakeClock()
    broadcaster = EventBroadcaster(client, "test-controller", host="host-1", clock=clock)
    recorder = broadcaster.new_recorder()
    other = core_pb2.ConfigMap()
    other.metadata.name = "other"
    other = await client.resource(core_pb2.ConfigMap, namespace).create(other)
    try:
        first = clock.now()
        for _ in range(3):
            recorder.eventf(configmap, "Warning", "FailedSync", "sync failed: %s", "quota exceeded")
            assert await broadcaster.flush()
            clock.step(5)
        recorder.event(configmap, "Warning", "FailedSync", "sync failed: something else")
        recorder.event(other, "Warning", "FailedSync", "sync failed: quota exceeded")
        assert await broadcaster.flush()
    finally:
        await broadcaster.shutdown()
    about = await events_about(client, namespace, "settings")
    assert len(about) == 2, [e.message for e in about]
    repeated = next(e for e in about if e.message == "sync failed: quota exceeded")
    assert repeated.count == 3
    assert repeated.firstTimestamp == rfc3339(first)
    assert repeated.lastTimestamp == rfc3339(first + 10)
    assert next(e for e in about if e.message.endswith("something else")).count == 1
    assert len(await events_about(client, namespace, "other")) == 1


async def test_the_spam_filter_caps_a_flood(client: Clientset, namespace: str, configmap: core_pb2.ConfigMap,
                                            broadcaster: EventBroadcaster) -> None:
    recorder = broadcaster.new_recorder()
    for i in range(40):
        recorder.event(configmap, "Warning", "BackOff", f"attempt {i} failed")
    assert await broadcaster.flush(timeout=20)
    events = await events_about(client, namespace, "settings")
    assert len(events) == 25
    assert broadcaster.dropped == 15


async def test_cluster_scoped_objects_get_events_in_default(
        client: Clientset, namespace: str, broadcaster: EventBroadcaster) -> None:
    ns = await client.resource(core_pb2.Namespace).get(namespace)
    broadcaster.new_recorder().event(ns, "Normal", "Checked", "namespace checked")
    assert await broadcaster.flush()
    events = client.resource(Event, "default")
    mine = [e for e in (await events.list()).items if e.involvedObject.name == namespace]
    try:
        assert len(mine) == 1
        ref = mine[0].involvedObject
        assert (ref.kind, ref.apiVersion, ref.namespace, ref.uid) == ("Namespace", "v1", "", ns.metadata.uid)
    finally:
        for e in mine:
            await events.delete(e.metadata.name)


async def test_bad_input_is_dropped_without_raising(
        client: Clientset, namespace: str, configmap: core_pb2.ConfigMap, broadcaster: EventBroadcaster) -> None:
    recorder = broadcaster.new_recorder()
    recorder.event(configmap, "Info", "Odd", "not a valid type")
    recorder.event(core_pb2.ConfigMap(), "Normal", "NoName", "an object without a name")
    recorder.eventf(configmap, "Normal", "BadFormat", "%d items", "not a number")
    assert await broadcaster.flush()
    events = (await client.resource(Event, namespace).list()).items
    assert [e.reason for e in events] == ["BadFormat"]
    assert "bad format arguments" in events[0].message
