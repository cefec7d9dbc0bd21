"""controller_manager/garbagecollector.py (and its graph) on the
in-memory clientset: Background deletion collects dependents whose owners
are all gone - by uid, so a re-created owner of the same name does not
save the old one's dependents; a dependent with a surviving owner only
loses the reference to the gone one; Foreground deletion deletes the
dependents first (blocking ones holding the owner) through a chain of
owners; Orphan deletion removes the references and keeps the dependents;
dependents of owners that vanished before the collector started are
collected at start; cluster-scoped owners of namespaced dependents."""

from __future__ import annotations

from typing import Any

from controller_manager.garbagecollector import GarbageCollector
from proto import apps_pb2, core_pb2

from ._cluster import Harness, meta, owner_ref, running_pod, settle

Pod = core_pb2.Pod
RS = apps_pb2.ReplicaSet
Deployment = apps_pb2.Deployment


def owned_pod(name: str, *owners: object, block: bool = False, hold: bool = False) -> Pod:
    pod = running_pod(name)
    for owner in owners:
        pod.metadata.ownerReferences.append(owner_ref(owner, block=block, controller=len(owners) == 1))
    if hold:
        pod.metadata.finalizers.append("example.com/hold")
    return pod


def names(h: Harness, kind: type[Any] = Pod) -> list[str]:
    return sorted(o.metadata.name for o in h.cs.objects(kind, "ns"))


async def release(h: Harness, *pods: str) -> None:
    client = h.client(Pod, "ns")
    for name in pods:
        pod = await client.get(name)
        del pod.metadata.finalizers[:]
        await client.update(pod)
    await settle()


async def test_background_deletion_collects_dependents_by_owner_uid() -> None:
    async with Harness(GarbageCollector) as h:
        rs = await h.create(meta(RS(), "rs", "ns"))
        impostor = meta(RS(), "rs", "ns")
        impostor.metadata.uid = "not-the-rs-uid"
        for pod in (owned_pod("p1", rs), owned_pod("p2", rs), owned_pod("stale", impostor), running_pod("free")):
            await h.client(Pod, "ns").create(pod)
        await settle()
        assert names(h) == ["free", "p1", "p2"]  # "stale" named rs by a uid rs does not have
        await h.client(RS, "ns").delete("rs")
        await settle()
        assert names(h) == ["free"]


async def test_a_re_created_owner_does_not_keep_the_old_ones_dependents() -> None:
    async with Harness(GarbageCollector) as h:
        old = await h.create(meta(RS(), "rs", "ns"))
        await h.create(owned_pod("old-pod", old))
        await h.client(RS, "ns").delete("rs")
        new = await h.client(RS, "ns").create(meta(RS(), "rs", "ns"))
        await h.client(Pod, "ns").create(owned_pod("new-pod", new))
        await settle()
        assert names(h) == ["new-pod"]


async def test_a_dependent_with_a_surviving_owner_only_loses_the_gone_reference() -> None:
    async with Harness(GarbageCollector) as h:
        a = await h.create(meta(RS(), "a", "ns"))
        b = await h.create(meta(RS(), "b", "ns"))
        await h.create(owned_pod("shared", a, b))
        await h.client(RS, "ns").delete("b")
        await settle()
        pod = h.get(Pod, "ns", "shared")
        assert pod is not None and [r.name for r in pod.metadata.ownerReferences] == ["a"]


async def test_foreground_deletion_deletes_dependents_first_through_a_chain() -> None:
    async with Harness(GarbageCollector) as h:
        d = await h.create(meta(Deployment(), "d", "ns"))
        rs = meta(RS(), "rs", "ns")
        rs.metadata.ownerReferences.append(owner_ref(d, block=True, controller=True))
        rs = await h.create(rs)
        loose = meta(core_pb2.ConfigMap(), "loose", "ns")
        loose.metadata.ownerReferences.append(owner_ref(d))  # not blocking
        await h.create(loose)
        await h.create(owned_pod("p1", rs, block=True, hold=True))

        await h.client(Deployment, "ns").delete("d", propagation="Foreground")
        await settle()
        # The pod is being deleted but its kubelet (a finalizer here) holds it:
        # the ReplicaSet and the Deployment wait, marked for deletion.
        pod = h.get(Pod, "ns", "p1")
        assert pod is not None and pod.metadata.deletionTimestamp
        stuck_rs, stuck_d = h.get(RS, "ns", "rs"), h.get(Deployment, "ns", "d")
        assert stuck_rs is not None and "foregroundDeletion" in stuck_rs.metadata.finalizers
        assert stuck_d is not None and stuck_d.metadata.deletionTimestamp
        assert h.get(core_pb2.ConfigMap, "ns", "loose") is None  # deleted, but never waited for

        await release(h, "p1")
        assert names(h) == [] and names(h, RS) == [] and names(h, Deployment) == []


async def test_orphan_deletion_keeps_the_dependents_without_the_reference() -> None:
    async with Harness(GarbageCollector) as h:
        rs = await h.create(meta(RS(), "rs", "ns"))
        await h.create(owned_pod("p1", rs))
        await h.create(owned_pod("p2", rs))
        await h.client(RS, "ns").delete("rs", propagation="Orphan")
        await settle()
        assert names(h, RS) == []
        assert names(h) == ["p1", "p2"]
        assert all(not p.metadata.ownerReferences for p in h.cs.objects(Pod, "ns"))


async def test_dependents_orphaned_while_the_collector_was_down_are_collected_at_start() -> None:
    h = Harness(GarbageCollector)
    rs = await h.cs.resource(RS, "ns").create(meta(RS(), "rs", "ns"))
    gone = meta(RS(), "gone", "ns")
    gone.metadata.uid = "deleted-long-ago"
    for pod in (owned_pod("kept", rs), owned_pod("orphaned-1", gone), owned_pod("orphaned-2", gone)):
        await h.cs.resource(Pod, "ns").create(pod)
    async with h:
        await settle()
        assert names(h) == ["kept"]
        # Absence was confirmed with the API, once for both dependents.
        assert h.cs.count("get", "replicasets.apps") == 1


async def test_a_cluster_scoped_owner_collects_namespaced_dependents() -> None:
    async with Harness(GarbageCollector) as h:
        node = await h.create(meta(core_pb2.Node(), "n1"))
        await h.create(owned_pod("p", node))
        await settle()
        assert names(h) == ["p"]
        await h.client(core_pb2.Node).delete("n1")
        await settle()
        assert names(h) == []
