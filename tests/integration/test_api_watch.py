"""Watches: events in order with no gap and no duplicate, across an
apiserver restart; selectors that add and remove objects from a watcher's
view; bookmarks; Gone after compaction; a slow watcher closed without
stalling others; and many watchers sharing one etcd watch."""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from api import MERGE_PATCH, StatusError
from client import ClientConfig, Clientset, WatchEvent
from proto import api_pb2, core_pb2

from .conftest import Etcd, start_apiserver


async def collect(stream: object, count: int, timeout: float = 10.0) -> list[WatchEvent[core_pb2.ConfigMap]]:
    events: list[WatchEvent[core_pb2.ConfigMap]] = []

    async def run() -> None:
        async for event in stream:  # type: ignore[attr-defined]
            if event.type != "BOOKMARK":
                events.append(event)
            if len(events) == count:
                return
    await asyncio.wait_for(run(), timeout)
    return events


async def test_events_in_order_without_gaps(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    start = (await cms.list()).resource_version
    stream = cms.watch(resource_version=start)
    writes = []
    for i in range(10):
        writes.append((await cms.create(core_pb2.ConfigMap(metadata={"name": f"c{i}"}))).metadata.resourceVersion)
    writes.append((await cms.patch("c3", {"data": {"k": "v"}}, patch_type=MERGE_PATCH)).metadata.resourceVersion)
    deleted = await cms.delete("c5")
    events = await collect(stream, 12)
    assert [e.type for e in events] == ["ADDED"] * 10 + ["MODIFIED", "DELETED"]
    revisions = [int(e.resource_version) for e in events]
    assert revisions == sorted(revisions) and len(set(revisions)) == 12
    assert [str(r) for r in revisions[:11]] == writes
    assert events[-1].object.metadata.name == "c5"
    assert int(events[-1].resource_version) > int(deleted.metadata.resourceVersion)


async def test_watch_from_zero_starts_with_current_objects(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    for name in ("a", "b"):
        await cms.create(core_pb2.ConfigMap(metadata={"name": name}))
    stream = cms.watch()
    first = await collect(stream, 2)
    assert sorted(e.object.metadata.name for e in first) == ["a", "b"]
    assert {e.type for e in first} == {"ADDED"}
    await cms.create(core_pb2.ConfigMap(metadata={"name": "c"}))
    assert [e.object.metadata.name for e in await collect(stream, 1)] == ["c"]


async def test_selectors_move_objects_in_and_out_of_view(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    start = (await cms.list()).resource_version
    stream = cms.watch(resource_version=start, label_selector="team=blue")
    await cms.create(core_pb2.ConfigMap(metadata={"name": "x", "labels": {"team": "red"}}))
    await cms.patch("x", {"metadata": {"labels": {"team": "blue"}}})  # now matches
    await cms.patch("x", {"data": {"a": "1"}})
    await cms.patch("x", {"metadata": {"labels": {"team": "green"}}})  # no longer matches
    await cms.create(core_pb2.ConfigMap(metadata={"name": "y", "labels": {"team": "blue"}}))
    events = await collect(stream, 4)
    assert [(e.type, e.object.metadata.name) for e in events] == [
        ("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x"), ("ADDED", "y")]


async def test_bookmarks_carry_progress(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)  # the session apiserver bookmarks every second
    created = await cms.create(core_pb2.ConfigMap(metadata={"name": "b"}))

    async def first_bookmark() -> WatchEvent[core_pb2.ConfigMap]:
        async for event in cms.watch(resource_version=created.metadata.resourceVersion, bookmarks=True):
            if event.type == "BOOKMARK":
                return event
        raise AssertionError("watch ended")
    bookmark = await asyncio.wait_for(first_bookmark(), 10)
    assert int(bookmark.resource_version) >= int(created.metadata.resourceVersion)
    assert bookmark.object.metadata.name == ""


async def test_resume_across_an_apiserver_restart(client: Clientset, namespace: str, etcd: Etcd,
                                                  workdir: Path) -> None:
    """Watch through a second apiserver, kill it mid-stream, keep writing
    through the first, then resume from the last resourceVersion seen: every
    change arrives exactly once, in order."""
    cms = client.resource(core_pb2.ConfigMap, namespace)
    expected: list[tuple[str, str]] = []
    seen: list[tuple[str, str]] = []
    last = (await cms.list()).resource_version
    for round_ in range(3):
        proc = start_apiserver(etcd, workdir)
        watcher = Clientset.connect(ClientConfig(server=proc.target))
        try:
            stream = watcher.resource(core_pb2.ConfigMap, namespace).watch(resource_version=last)
            for i in range(5):
                cm = await cms.create(core_pb2.ConfigMap(metadata={"name": f"r{round_}-{i}"}))
                expected.append((cm.metadata.name, cm.metadata.resourceVersion))
            events = await collect(stream, len(expected) - len(seen))
            seen += [(e.object.metadata.name, e.resource_version) for e in events]
            last = events[-1].resource_version
            proc.kill()  # no goodbye: SIGKILL
            for i in range(5, 8):  # changes while no apiserver serves this watch
                cm = await cms.create(core_pb2.ConfigMap(metadata={"name": f"r{round_}-{i}"}))
                expected.append((cm.metadata.name, cm.metadata.resourceVersion))
        finally:
            proc.kill()
            await watcher.close()
    proc = start_apiserver(etcd, workdir)
    watcher = Clientset.connect(ClientConfig(server=proc.target))
    try:
        stream = watcher.resource(core_pb2.ConfigMap, namespace).watch(resource_version=last)
        seen += [(e.object.metadata.name, e.resource_version)
                 for e in await collect(stream, len(expected) - len(seen))]
    finally:
        await watcher.close()
        proc.stop()
    assert seen == expected


def etcdctl(etcd: Etcd, *args: str) -> str:
    return subprocess.run(["etcdctl", "--endpoints", etcd.url, *args], capture_output=True, text=True, check=True,
                          env={"ETCDCTL_API": "3"}).stdout


async def test_gone_after_compaction(client: Clientset, namespace: str, etcd: Etcd, workdir: Path) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    old = (await cms.create(core_pb2.ConfigMap(metadata={"name": "old"}))).metadata.resourceVersion
    for i in range(3):
        await cms.create(core_pb2.ConfigMap(metadata={"name": f"n{i}"}))
    proc = start_apiserver(etcd, workdir)  # its watch cache starts after `old`
    fresh = Clientset.connect(ClientConfig(server=proc.target))
    try:
        resumed = await collect(fresh.resource(core_pb2.ConfigMap, namespace).watch(resource_version=old), 3)
        assert [e.object.metadata.name for e in resumed] == ["n0", "n1", "n2"]  # still in etcd's history
        newest = (await cms.create(core_pb2.ConfigMap(metadata={"name": "newest"}))).metadata.resourceVersion
        etcdctl(etcd, "compact", newest)
        with pytest.raises(StatusError) as err:
            await collect(fresh.resource(core_pb2.ConfigMap, namespace).watch(resource_version=old), 1)
        assert err.value.reason == "Gone" and "too old resource version" in err.value.message
        # The client relists and watches from the list's resourceVersion.
        listing = await fresh.resource(core_pb2.ConfigMap, namespace).list()
        assert {c.metadata.name for c in listing.items} == {"old", "n0", "n1", "n2", "newest"}
    finally:
        await fresh.close()
        proc.stop()


async def test_a_slow_watcher_is_closed_without_stalling_others(client: Clientset, namespace: str, etcd: Etcd,
                                                                workdir: Path) -> None:
    proc = start_apiserver(etcd, workdir, "--watch-buffer", "20")
    # A client that does not read: without BDP probing its flow-control
    # window stays at 64 KiB, so the server cannot push events past it.
    channel = grpc.aio.insecure_channel(proc.target, options=[("grpc.http2.bdp_probe", 0)])
    fast = Clientset.connect(ClientConfig(server=proc.target))
    try:
        from proto import api_pb2_grpc

        stub = api_pb2_grpc.ResourcesStub(channel)
        start = (await client.resource(core_pb2.ConfigMap, namespace).list()).resource_version
        slow = stub.Watch(api_pb2.WatchRequest(resource="configmaps", namespace=namespace, resourceVersion=start))
        fast_stream = fast.resource(core_pb2.ConfigMap, namespace).watch(resource_version=start)
        fast_events = asyncio.ensure_future(collect(fast_stream, 201, timeout=60))
        cms = client.resource(core_pb2.ConfigMap, namespace)
        await cms.create(core_pb2.ConfigMap(metadata={"name": "first"}))
        assert (await asyncio.wait_for(slow.read(), 10)).type == "ADDED"  # the slow watch is live; now it stalls
        big = "x" * 20_000  # large events fill the slow reader's flow-control window quickly
        for i in range(200):
            await cms.create(core_pb2.ConfigMap(metadata={"name": f"s{i}"}, data={"blob": big}))
        assert len(await fast_events) == 201  # the fast watcher got everything

        received: list[str] = []

        async def drain() -> None:
            while (event := await slow.read()) is not grpc.aio.EOF:
                cm = core_pb2.ConfigMap()
                cm.ParseFromString(event.object.value)
                received.append(cm.metadata.name)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(drain(), 30)
        status = StatusError.from_rpc_error(err.value)
        assert status.reason == "TooManyRequests"
        assert "did not keep up" in status.message and "watch again from resourceVersion" in status.message
        # What was buffered before the close still arrives, in order and
        # without a gap, so resuming from the last event loses nothing.
        assert len(received) >= 20
        assert received == [f"s{i}" for i in range(len(received))]
    finally:
        await channel.close()
        await fast.close()
        proc.stop()


def etcd_watchers(etcd: Etcd) -> int:
    text = urllib.request.urlopen(f"{etcd.url}/metrics", timeout=5).read().decode()
    match = re.search(r"^etcd_debugging_mvcc_watcher_total (\d+)", text, re.M)
    assert match, "etcd exports its watcher count"
    return int(match.group(1))


async def test_many_watchers_share_one_etcd_watch(client: Clientset, namespace: str, etcd: Etcd) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    before = etcd_watchers(etcd)
    start = (await cms.list()).resource_version
    streams = [cms.watch(resource_version=start) for _ in range(50)]
    collectors = [asyncio.ensure_future(collect(s, 1)) for s in streams]
    await asyncio.sleep(0.5)
    assert etcd_watchers(etcd) == before  # fifty client watches, no new etcd watch
    await cms.create(core_pb2.ConfigMap(metadata={"name": "fanout"}))
    results = await asyncio.gather(*collectors)
    assert all(r[0].object.metadata.name == "fanout" for r in results)
