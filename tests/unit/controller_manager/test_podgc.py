"""controller_manager/podgc.py on the in-memory clientset with a fake
clock: terminated pods beyond the threshold go oldest (and evicted) first,
pods on a node that is gone go after the quarantine (marked Failed with a
DisruptionTarget condition, force-deleted), not before and not while the
API still has the node; unscheduled terminating pods and terminating pods
on out-of-service nodes are force-deleted; running pods are never
touched."""

from __future__ import annotations

from api import rfc3339
from controller_manager.podgc import OUT_OF_SERVICE, PodGCController
from proto import core_pb2
from tests.support.fakeclient import pod_grace

from ._cluster import Harness, meta, running_pod, settle

Pod = core_pb2.Pod
Node = core_pb2.Node


def names(h: Harness) -> list[str]:
    return sorted(p.metadata.name for p in h.cs.objects(Pod, "ns"))


async def test_terminated_pods_beyond_the_threshold_go_oldest_first() -> None:
    async with Harness(PodGCController, terminated_pod_gc_threshold=2, pod_gc_period=20.0) as h:
        await h.client(Node).create(meta(Node(), "node-1"))
        for i, phase in enumerate(("Succeeded", "Failed", "Succeeded", "Running", "Succeeded")):
            p = running_pod(f"p{i}")
            p.status.phase = phase
            await h.client(Pod, "ns").create(p)
            await h.advance(1, tick=1)
        evicted = running_pod("evicted")
        evicted.status.phase, evicted.status.reason = "Failed", "Evicted"
        await h.client(Pod, "ns").create(evicted)
        await h.advance(20, tick=1)
        # Five terminated, two kept: the evicted one and the oldest two went.
        assert names(h) == ["p2", "p3", "p4"]


async def test_orphaned_pods_go_after_the_quarantine() -> None:
    async with Harness(PodGCController, pod_gc_period=5.0, pod_gc_orphan_quarantine=40.0) as h:
        h.cs.graceful = pod_grace
        await h.client(Node).create(meta(Node(), "alive"))
        await h.client(Pod, "ns").create(running_pod("safe", node="alive"))
        await h.client(Pod, "ns").create(running_pod("orphan", node="gone"))
        await h.advance(30, tick=1)
        assert names(h) == ["orphan", "safe"]
        await h.advance(20, tick=1)
        assert names(h) == ["safe"]
        deleted = [a for a in h.cs.actions if a.verb == "update" and a.name == "orphan" and a.subresource == "status"]
        assert deleted  # marked Failed before it went


async def test_a_node_the_cache_missed_is_checked_with_the_api() -> None:
    async with Harness(PodGCController, pod_gc_period=5.0, pod_gc_orphan_quarantine=10.0) as h:
        h.cs.hold_watches("nodes")  # the cache never hears of the node
        await h.client(Node).create(meta(Node(), "late"))
        await h.client(Pod, "ns").create(running_pod("p", node="late"))
        await h.advance(30, tick=1)
        assert names(h) == ["p"]
        h.cs.release_watches()


async def test_terminating_pods_nobody_will_finish_are_force_deleted() -> None:
    async with Harness(PodGCController, pod_gc_period=5.0) as h:
        h.cs.graceful = lambda kind, obj, requested: 30 if kind.kind == "Pod" and requested is None else 0
        node = meta(Node(), "dead")
        node.spec.taints.add(key=OUT_OF_SERVICE, value="nodeshutdown", effect="NoExecute")
        await h.client(Node).create(node)
        await h.client(Node).create(meta(Node(), "fine"))
        for name, node_name in (("unscheduled", ""), ("on-dead", "dead"), ("on-fine", "fine")):
            await h.client(Pod, "ns").create(running_pod(name, node=node_name))
            await h.client(Pod, "ns").delete(name)
        await h.client(Pod, "ns").create(running_pod("running", node="fine"))
        await settle()
        assert names(h) == ["on-dead", "on-fine", "running", "unscheduled"]
        await h.advance(6, tick=1)
        assert names(h) == ["on-fine", "running"]


def test_eviction_order() -> None:
    from controller_manager.podgc import eviction_order
    old, new, evicted = running_pod("old"), running_pod("new"), running_pod("evicted")
    old.metadata.creationTimestamp, new.metadata.creationTimestamp = rfc3339(1), rfc3339(2)
    evicted.metadata.creationTimestamp = rfc3339(3)
    evicted.status.reason = "Evicted"
    assert [p.metadata.name for p in sorted((new, old, evicted), key=eviction_order)] == ["evicted", "old", "new"]
