"""controller_manager/namespace.py on the in-memory clientset with a fake
clock: a deleted namespace's content of every kind is deleted, the
namespace is finalized (and removed) once nothing is left, content that
takes time (a pod in its grace period, an object held by a finalizer) is
reported in the namespace's conditions and waited for, other namespaces
and live namespaces are untouched."""

from __future__ import annotations

from controller_manager.namespace import NamespaceController
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import pod_grace

from ._cluster import Harness, meta, running_pod, settle

Namespace = core_pb2.Namespace


async def make_namespace(h: Harness, name: str) -> None:
    ns = meta(Namespace(), name)
    ns.spec.finalizers.append("kubernetes")
    ns.status.phase = "Active"
    await h.client(Namespace).create(ns)


async def fill(h: Harness, namespace: str) -> None:
    await h.client(core_pb2.ConfigMap, namespace).create(meta(core_pb2.ConfigMap(), "cm", namespace))
    await h.client(core_pb2.Secret, namespace).create(meta(core_pb2.Secret(), "s", namespace))
    rs = meta(apps_pb2.ReplicaSet(), "rs", namespace)
    await h.client(apps_pb2.ReplicaSet, namespace).create(rs)
    await h.client(core_pb2.Pod, namespace).create(running_pod("p", namespace))
    await settle()


def content(h: Harness, namespace: str) -> int:
    return sum(len(h.cs.objects(kind, namespace)) for kind in
               (core_pb2.ConfigMap, core_pb2.Secret, apps_pb2.ReplicaSet, core_pb2.Pod))


async def test_a_deleted_namespace_is_emptied_then_removed() -> None:
    async with Harness(NamespaceController) as h:
        for name in ("doomed", "kept"):
            await make_namespace(h, name)
            await fill(h, name)
        await h.client(Namespace).delete("doomed")
        await settle()
        assert content(h, "doomed") == 0
        assert h.get(Namespace, "", "doomed") is None
        assert content(h, "kept") == 4 and h.get(Namespace, "", "kept") is not None


async def test_remaining_content_is_reported_and_waited_for() -> None:
    async with Harness(NamespaceController) as h:
        h.cs.graceful = pod_grace  # the pod waits for its kubelet
        await make_namespace(h, "doomed")
        await fill(h, "doomed")
        held = meta(core_pb2.ConfigMap(), "held", "doomed")
        held.metadata.finalizers.append("example.com/hold")
        await h.client(core_pb2.ConfigMap, "doomed").create(held)
        await h.client(Namespace).delete("doomed")
        await settle()
        ns = h.get(Namespace, "", "doomed")
        assert ns is not None and list(ns.spec.finalizers) == ["kubernetes"]
        conditions = {c.type: c for c in ns.status.conditions}
        remaining = conditions["NamespaceContentRemaining"]
        assert remaining.status == "True" and "pods has 1 resource instances" in remaining.message
        assert "configmaps has 1 resource instances" in remaining.message
        assert "example.com/hold in 1 resource instances" in conditions["NamespaceFinalizersRemaining"].message

        # The kubelet finishes the pod and the finalizer's owner lets go.
        await h.client(core_pb2.Pod, "doomed").delete("p", grace_period=0)
        cm = await h.client(core_pb2.ConfigMap, "doomed").get("held")
        del cm.metadata.finalizers[:]
        await h.client(core_pb2.ConfigMap, "doomed").update(cm)
        await settle()
        assert h.get(Namespace, "", "doomed") is not None  # not looked at again yet
        await h.advance(31, tick=1)
        assert h.get(Namespace, "", "doomed") is None


async def test_a_live_namespace_is_left_alone() -> None:
    async with Harness(NamespaceController) as h:
        await make_namespace(h, "live")
        await fill(h, "live")
        await h.advance(10)
        assert content(h, "live") == 4
        assert h.cs.count("delete", "pods") == 0
