"""tests/support/fakeclient.py, the in-memory clientset the controller unit
tests run on: it must answer like the apiserver where controllers depend
on it - generateName, resourceVersions and Conflicts, status vs main
resource, generation, patches with the uid precondition, deletion with
finalizers and grace, watches with selectors and resume, injected
failures, held watches - and an informer must run on it unchanged."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from api import MERGE_PATCH, FakeClock, StatusError, new_error
from client import Clientset, SharedInformerFactory, WatchEvent
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset, pod_grace

from ._workloads import orphan_pod, replica_set, settle

Pod = core_pb2.Pod


@pytest.fixture
def cs() -> FakeClientset:
    return FakeClientset(clock=FakeClock())


async def test_create_names_and_stamps(cs: FakeClientset) -> None:
    pods = cs.resource(Pod, "ns")
    pod = Pod(metadata={"generateName": "web-"})
    a, b = await pods.create(pod), await pods.create(pod)
    assert a.metadata.name.startswith("web-") and a.metadata.name != b.metadata.name
    assert a.metadata.uid and a.metadata.creationTimestamp and a.metadata.namespace == "ns"
    assert int(b.metadata.resourceVersion) > int(a.metadata.resourceVersion)
    with pytest.raises(StatusError) as err:
        await pods.create(Pod(metadata={"name": a.metadata.name}))
    assert err.value.reason == "AlreadyExists"
    assert cs.count("create", "pods") == 3


async def test_update_conflicts_generation_and_status(cs: FakeClientset) -> None:
    rss = cs.resource(apps_pb2.ReplicaSet, "ns")
    rs = await rss.create(replica_set("web", 1))
    assert rs.metadata.generation == 1
    rs.spec.replicas = 3
    rs.status.replicas = 99  # ignored by the main resource
    updated = await rss.update(rs)
    assert updated.metadata.generation == 2 and updated.status.replicas == 0
    with pytest.raises(StatusError) as err:
        await rss.update(rs)  # rs still has the old resourceVersion
    assert err.value.reason == "Conflict"
    updated.status.replicas = 3
    updated.spec.replicas = 7  # ignored by /status
    stored = await rss.update_status(updated)
    assert stored.status.replicas == 3 and stored.spec.replicas == 3 and stored.metadata.generation == 2
    same = await rss.update_status(stored)
    assert same.metadata.resourceVersion == stored.metadata.resourceVersion  # no change, no write


async def test_patches_and_uid_precondition(cs: FakeClientset) -> None:
    pods = cs.resource(Pod, "ns")
    pod = await pods.create(orphan_pod("a", {"app": "web"}))
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u1", "controller": True}
    patched = await pods.patch("a", {"metadata": {"ownerReferences": [ref], "uid": pod.metadata.uid}})
    assert [r.uid for r in patched.metadata.ownerReferences] == ["u1"]
    released = await pods.patch("a", {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "u1"}]}})
    assert not released.metadata.ownerReferences
    with pytest.raises(StatusError) as err:
        await pods.patch("a", {"metadata": {"labels": {"x": "y"}, "uid": "someone-else"}})
    assert err.value.reason == "Invalid"
    merged = await pods.patch("a", {"metadata": {"labels": {"app": None, "tier": "db"}}}, patch_type=MERGE_PATCH)
    assert dict(merged.metadata.labels) == {"tier": "db"}


async def test_delete_preconditions_finalizers_and_grace() -> None:
    clock = FakeClock()
    cs = FakeClientset(clock=clock, graceful=pod_grace)
    pods = cs.resource(Pod, "ns")
    await pods.create(orphan_pod("a", {}))
    with pytest.raises(StatusError) as err:
        await pods.delete("a", uid="wrong")
    assert err.value.reason == "Conflict"
    marked = await pods.delete("a")  # scheduled: graceful
    assert marked.metadata.deletionTimestamp and marked.metadata.deletionGracePeriodSeconds == 30
    await pods.delete("a", grace_period=0)
    assert cs.objects(Pod) == []
    unscheduled = orphan_pod("b", {}, node="")
    unscheduled.metadata.finalizers.append("example.com/hold")
    await pods.create(unscheduled)
    held = await pods.delete("b")
    assert held.metadata.deletionTimestamp
    del held.metadata.finalizers[:]
    await pods.update(held)  # the last finalizer gone: removed
    assert cs.objects(Pod) == []


async def test_watch_selectors_resume_and_hold(cs: FakeClientset) -> None:
    pods = cs.resource(Pod, "ns")
    first = await pods.create(orphan_pod("a", {"app": "web"}))
    seen: list[tuple[str, str]] = []

    async def watch(rv: str) -> None:
        async for event in pods.watch(resource_version=rv, label_selector="app=web"):
            seen.append((event.type, event.object.metadata.name))

    task = asyncio.create_task(watch(first.metadata.resourceVersion))
    await settle()
    await pods.create(orphan_pod("b", {"app": "db"}))  # not selected
    await pods.patch("a", {"metadata": {"labels": {"app": "db"}}})  # stops matching
    await settle()
    cs.hold_watches()
    await pods.create(orphan_pod("c", {"app": "web"}))
    await settle()
    assert seen == [("DELETED", "a")]
    cs.release_watches()
    await settle()
    assert seen == [("DELETED", "a"), ("ADDED", "c")]
    await cs.close()
    await task


async def test_injected_failures(cs: FakeClientset) -> None:
    pods = cs.resource(Pod, "ns")
    cs.inject("create", "pods", new_error("Forbidden", "exceeded quota"), times=1)
    with pytest.raises(StatusError):
        await pods.create(orphan_pod("a", {}))
    await pods.create(orphan_pod("a", {}))
    assert [p.metadata.name for p in cs.objects(Pod)] == ["a"]


async def test_an_informer_runs_on_it(cs: FakeClientset) -> None:
    factory = SharedInformerFactory(cast(Clientset, cs), clock=FakeClock())
    informer = factory.informer_for(Pod)
    events: list[str] = []
    informer.add_event_handler(on_add=lambda p: events.append(f"add {p.metadata.name}"),
                               on_delete=lambda p: events.append("delete"))
    await cs.resource(Pod, "ns").create(orphan_pod("a", {}))
    factory.start()
    assert await factory.wait_for_cache_sync(1)
    await cs.resource(Pod, "ns").create(orphan_pod("b", {}))
    await cs.resource(Pod, "ns").delete("a")
    await settle()
    assert events == ["add a", "add b", "delete"]
    assert [p.metadata.name for p in informer.lister().list("ns")] == ["b"]
    await factory.shutdown()
    assert isinstance(WatchEvent("ADDED", Pod()), WatchEvent)


async def test_namespace_finalize(cs: FakeClientset) -> None:
    namespaces = cs.resource(core_pb2.Namespace)
    kept = core_pb2.Namespace(metadata={"name": "kept", "labels": {"a": "b"}})
    kept.spec.finalizers.append("kubernetes")
    stored = await namespaces.create(kept)
    stored.metadata.labels["a"] = "changed"  # ignored by finalize
    del stored.spec.finalizers[:]
    finalized = await namespaces.finalize(stored)
    assert not finalized.spec.finalizers and finalized.metadata.labels["a"] == "b"
