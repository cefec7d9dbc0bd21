"""Deletion as Kubernetes does it: preconditions, finalizers and
deletionTimestamp, graceful deletion of pods, propagation policies, and
namespaces that terminate instead of vanishing."""

from __future__ import annotations

import pytest

from api import MERGE_PATCH, StatusError
from client import Clientset
from proto import core_pb2

from .test_api_crud import make_pod


async def test_delete_returns_the_object_and_removes_it(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    cm = await cms.create(core_pb2.ConfigMap(metadata={"name": "c"}, data={"k": "v"}))
    gone = await cms.delete("c")
    assert gone.metadata.uid == cm.metadata.uid and gone.data["k"] == "v"
    with pytest.raises(StatusError, match='configmaps "c" not found'):
        await cms.get("c")
    with pytest.raises(StatusError, match='configmaps "c" not found'):
        await cms.delete("c")


async def test_delete_preconditions(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    cm = await cms.create(core_pb2.ConfigMap(metadata={"name": "c"}))
    with pytest.raises(StatusError) as err:
        await cms.delete("c", uid="not-the-uid")
    assert err.value.reason == "Conflict"
    assert "Precondition failed: UID in precondition: not-the-uid" in err.value.message
    with pytest.raises(StatusError) as err:
        await cms.delete("c", resource_version="1")
    assert "Precondition failed: ResourceVersion in precondition: 1" in err.value.message
    await cms.delete("c", uid=cm.metadata.uid, resource_version=cm.metadata.resourceVersion)


async def test_finalizers_hold_an_object_until_removed(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    await cms.create(core_pb2.ConfigMap(metadata={"name": "held", "finalizers": ["example.com/cleanup"]}))
    marked = await cms.delete("held")
    assert marked.metadata.deletionTimestamp and marked.metadata.deletionGracePeriodSeconds == 0
    still = await cms.get("held")
    assert still.metadata.deletionTimestamp == marked.metadata.deletionTimestamp
    again = await cms.delete("held")  # deleting again changes nothing
    assert again.metadata.resourceVersion == still.metadata.resourceVersion
    still.data["late"] = "update"  # updates are still allowed while finalizers run
    still = await cms.update(still)
    # deletionTimestamp is the server's: an update cannot clear it.
    kept = await cms.patch("held", {"metadata": {"deletionTimestamp": None}}, patch_type=MERGE_PATCH)
    assert kept.metadata.deletionTimestamp == marked.metadata.deletionTimestamp
    await cms.patch("held", {"metadata": {"finalizers": None}}, patch_type=MERGE_PATCH)
    with pytest.raises(StatusError, match="not found"):
        await cms.get("held")


async def test_propagation_policies_add_gc_finalizers(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    await cms.create(core_pb2.ConfigMap(metadata={"name": "fg"}))
    await cms.create(core_pb2.ConfigMap(metadata={"name": "orphan"}))
    assert list((await cms.delete("fg", propagation="Foreground")).metadata.finalizers) == ["foregroundDeletion"]
    assert list((await cms.delete("orphan", propagation="Orphan")).metadata.finalizers) == ["orphan"]
    with pytest.raises(StatusError) as err:
        await cms.delete("fg", propagation="Sideways")
    assert err.value.reason == "Invalid"


async def test_graceful_deletion_of_a_scheduled_pod(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await pods.create(make_pod("bound", node="node-1"))
    marked = await pods.delete("bound")
    assert marked.metadata.deletionGracePeriodSeconds == 30  # terminationGracePeriodSeconds default
    assert (await pods.get("bound")).metadata.deletionTimestamp
    shorter = await pods.delete("bound", grace_period=5)
    assert shorter.metadata.deletionGracePeriodSeconds == 5
    await pods.delete("bound", grace_period=0)  # what the kubelet sends when the containers are gone
    with pytest.raises(StatusError, match="not found"):
        await pods.get("bound")
    await pods.create(make_pod("unbound"))
    await pods.delete("unbound")  # no node: nothing to wait for
    with pytest.raises(StatusError, match="not found"):
        await pods.get("unbound")


async def test_namespace_deletion_terminates_and_blocks_new_content(client: Clientset) -> None:
    namespaces = client.resource(core_pb2.Namespace)
    ns = await namespaces.create(core_pb2.Namespace(metadata={"name": "doomed-ns"}))
    assert list(ns.spec.finalizers) == ["kubernetes"] and ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "doomed-ns"
    await client.resource(core_pb2.ConfigMap, "doomed-ns").create(core_pb2.ConfigMap(metadata={"name": "c"}))
    marked = await namespaces.delete("doomed-ns")
    assert marked.status.phase == "Terminating" and marked.metadata.deletionTimestamp
    with pytest.raises(StatusError) as err:
        await client.resource(core_pb2.ConfigMap, "doomed-ns").create(core_pb2.ConfigMap(metadata={"name": "d"}))
    assert err.value.reason == "Forbidden"
    assert "unable to create new content in namespace doomed-ns because it is being terminated" in err.value.message


async def test_system_namespaces_cannot_be_deleted(client: Clientset) -> None:
    with pytest.raises(StatusError) as err:
        await client.resource(core_pb2.Namespace).delete("kube-system")
    assert (err.value.reason, err.value.message) == (
        "Forbidden", 'namespaces "kube-system" is forbidden: this namespace may not be deleted')


async def test_binding_a_pod_to_a_node(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    pod = await pods.create(make_pod("to-bind"))
    bound = await pods.bind("to-bind", "node-1", uid=pod.metadata.uid, annotations={"scheduled-by": "test"})
    assert bound.spec.nodeName == "node-1" and bound.metadata.annotations["scheduled-by"] == "test"
    scheduled = [c for c in bound.status.conditions if c.type == "PodScheduled"]
    assert len(scheduled) == 1 and scheduled[0].status == "True" and scheduled[0].lastTransitionTime
    with pytest.raises(StatusError) as err:
        await pods.bind("to-bind", "node-2")
    assert err.value.reason == "Conflict"
    assert err.value.message == ('Operation cannot be fulfilled on pods/binding "to-bind": pod to-bind is already '
                                 'assigned to node "node-1"')
    await pods.create(make_pod("other"))
    with pytest.raises(StatusError, match="Precondition failed: UID"):
        await pods.bind("other", "node-1", uid="wrong")
    with pytest.raises(StatusError) as err:
        await pods.bind("other", "Not_A_Node")
    assert err.value.reason == "Invalid" and "target.name" in err.value.message
    with pytest.raises(StatusError, match='pods "missing" not found'):
        await pods.bind("missing", "node-1")
    # An update cannot do what only a binding may: spec.nodeName is immutable.
    other = await pods.get("other")
    other.spec.nodeName = "node-1"
    with pytest.raises(StatusError, match="pod updates may not change fields"):
        await pods.update(other)


async def test_namespace_finalize_completes_a_deletion(client: Clientset) -> None:
    namespaces = client.resource(core_pb2.Namespace)
    await namespaces.create(core_pb2.Namespace(metadata={"name": "finalize-me"}))
    marked = await namespaces.delete("finalize-me")
    assert marked.status.phase == "Terminating"
    sneaky = core_pb2.Namespace()
    sneaky.CopyFrom(marked)
    sneaky.metadata.labels["changed"] = "no"  # finalize changes spec.finalizers only
    del sneaky.spec.finalizers[:]
    await namespaces.finalize(sneaky)  # what the namespace controller does once the namespace is empty
    with pytest.raises(StatusError, match='namespaces "finalize-me" not found'):
        await namespaces.get("finalize-me")
    await namespaces.create(core_pb2.Namespace(metadata={"name": "finalize-keep"}))
    kept = await namespaces.get("finalize-keep")
    kept.spec.finalizers.append("example.com/extra")
    kept.metadata.labels["x"] = "y"
    after = await namespaces.finalize(kept)
    assert list(after.spec.finalizers) == ["kubernetes", "example.com/extra"] and "x" not in after.metadata.labels
    with pytest.raises(StatusError) as err:
        await client.resource(core_pb2.ConfigMap, "default").finalize(core_pb2.ConfigMap(metadata={"name": "x"}))
    assert err.value.reason == "NotFound" and "configmaps/finalize" in err.value.message
