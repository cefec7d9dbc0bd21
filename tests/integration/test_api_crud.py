"""The generic resource service against a real apiserver and etcd: create,
get, list, update, status, patch, delete, with Kubernetes' semantics for
resourceVersion, generation, generateName, namespaces, dry run, selectors
and pagination."""

from __future__ import annotations

import asyncio

import pytest

from api import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, StatusError, from_dict
from client import Clientset
from proto import apps_pb2, core_pb2


def make_pod(name: str, labels: dict[str, str] | None = None, node: str = "") -> core_pb2.Pod:
    pod = core_pb2.Pod(metadata={"name": name, "labels": labels or {}})
    pod.spec.containers.add(name="app", image="nginx:1.14.2")
    if node:
        pod.spec.nodeName = node
    return pod


def make_deployment(name: str, replicas: int = 1) -> apps_pb2.Deployment:
    return from_dict(apps_pb2.Deployment, {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.14.2"}]}}}})


async def test_create_get_and_resource_version(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    created = await pods.create(make_pod("web"))
    assert created.metadata.uid and created.metadata.creationTimestamp.endswith("Z")
    assert created.metadata.namespace == namespace
    assert int(created.metadata.resourceVersion) > 0
    fetched = await pods.get("web")
    assert fetched.metadata.resourceVersion == created.metadata.resourceVersion
    assert fetched.spec.restartPolicy == "Always"  # defaulted
    assert fetched.status.phase == "Pending"
    with pytest.raises(StatusError) as err:
        await pods.create(make_pod("web"))
    assert err.value.reason == "AlreadyExists"
    assert err.value.message == 'pods "web" already exists'
    with pytest.raises(StatusError) as err:
        await pods.get("nope")
    assert (err.value.reason, err.value.message) == ("NotFound", 'pods "nope" not found')


async def test_named_groups_in_messages(client: Clientset, namespace: str) -> None:
    deployments = client.resource(apps_pb2.Deployment, namespace)
    with pytest.raises(StatusError) as err:
        await deployments.get("web")
    assert err.value.message == 'deployments.apps "web" not found'


async def test_generate_name(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    pod = core_pb2.Pod(metadata={"generateName": "worker-"})
    pod.spec.containers.add(name="app", image="busybox")
    names = {(await pods.create(pod)).metadata.name for _ in range(5)}
    assert len(names) == 5 and all(n.startswith("worker-") and len(n) == len("worker-") + 5 for n in names)


async def test_namespace_must_exist(client: Clientset) -> None:
    with pytest.raises(StatusError) as err:
        await client.resource(core_pb2.Pod, "no-such-namespace").create(make_pod("x"))
    assert (err.value.reason, err.value.message) == ("NotFound", 'namespaces "no-such-namespace" not found')


async def test_dry_run_stores_nothing(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    preview = await pods.create(make_pod("dry"), dry_run=True)
    assert preview.spec.dnsPolicy == "ClusterFirst" and not preview.metadata.resourceVersion
    with pytest.raises(StatusError, match="not found"):
        await pods.get("dry")


async def test_update_conflicts_and_no_op_updates(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    cm = await cms.create(core_pb2.ConfigMap(metadata={"name": "c"}, data={"a": "1"}))
    stale = core_pb2.ConfigMap()
    stale.CopyFrom(cm)
    cm.data["a"] = "2"
    updated = await cms.update(cm)
    assert int(updated.metadata.resourceVersion) > int(cm.metadata.resourceVersion)
    stale.data["a"] = "3"
    with pytest.raises(StatusError) as err:
        await cms.update(stale)
    assert err.value.reason == "Conflict"
    assert err.value.message == ('Operation cannot be fulfilled on configmaps "c": the object has been modified; '
                                 'please apply your changes to the latest version and try again')
    same = await cms.update(updated)
    assert same.metadata.resourceVersion == updated.metadata.resourceVersion  # nothing changed, nothing written
    unconditional = core_pb2.ConfigMap(metadata={"name": "c"}, data={"a": "4"})
    assert (await cms.update(unconditional)).data["a"] == "4"
    assert (await cms.get("c")).metadata.uid == cm.metadata.uid  # system fields survive an update that omits them


async def test_generation_counts_spec_changes(client: Clientset, namespace: str) -> None:
    deps = client.resource(apps_pb2.Deployment, namespace)
    d = await deps.create(make_deployment("web"))
    assert d.metadata.generation == 1
    d.metadata.labels["x"] = "y"
    d = await deps.update(d)
    assert d.metadata.generation == 1
    d.spec.replicas = 3
    d = await deps.update(d)
    assert d.metadata.generation == 2


async def test_status_subresource(client: Clientset, namespace: str) -> None:
    deps = client.resource(apps_pb2.Deployment, namespace)
    d = await deps.create(make_deployment("web"))
    d.status.replicas = 7
    d = await deps.update(d)
    assert d.status.replicas == 0  # the main resource ignores status
    d.status.replicas = 7
    d.spec.replicas = 9
    d = await deps.update_status(d)
    assert d.status.replicas == 7 and d.spec.replicas == 1  # /status ignores spec
    assert d.metadata.generation == 1


async def test_patches(client: Clientset, namespace: str) -> None:
    deps = client.resource(apps_pb2.Deployment, namespace)
    await deps.create(make_deployment("web"))
    d = await deps.patch("web", {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox"}]}}}}, patch_type=STRATEGIC_MERGE_PATCH)
    assert [c.name for c in d.spec.template.spec.containers] == ["web", "sidecar"]
    d = await deps.patch("web", {"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "busybox"}]}}}}, patch_type=MERGE_PATCH)
    assert [c.name for c in d.spec.template.spec.containers] == ["only"]
    d = await deps.patch("web", [{"op": "replace", "path": "/spec/replicas", "value": 4}], patch_type=JSON_PATCH)
    assert d.spec.replicas == 4
    d = await deps.patch("web", {"status": {"replicas": 2}}, subresource="status")
    assert d.status.replicas == 2
    with pytest.raises(StatusError) as err:
        await deps.patch("web", {"spec": {"replicaz": 1}})
    assert err.value.reason == "BadRequest" and 'unknown field "spec.replicaz"' in err.value.message
    with pytest.raises(StatusError) as err:
        await deps.patch("web", {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 5}})
    assert err.value.reason == "Conflict"
    assert (await deps.get("web")).spec.replicas == 4


async def test_label_and_field_selectors(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await pods.create(make_pod("a", {"app": "web", "tier": "front"}, node="node-1"))
    await pods.create(make_pod("b", {"app": "web", "tier": "back"}, node="node-2"))
    await pods.create(make_pod("c", {"app": "db"}))

    async def names(**kw: str) -> list[str]:
        return sorted(p.metadata.name for p in (await pods.list(**kw)).items)

    assert await names(label_selector="app=web") == ["a", "b"]
    assert await names(label_selector="app=web,tier!=front") == ["b"]
    assert await names(label_selector="tier in (front,back)") == ["a", "b"]
    assert await names(label_selector="!tier") == ["c"]
    assert await names(field_selector="spec.nodeName=node-2") == ["b"]
    assert await names(field_selector="spec.nodeName=") == ["c"]
    assert await names(field_selector="metadata.name!=a", label_selector="app=web") == ["b"]
    assert await names(resource_version="0", label_selector="app") == ["a", "b", "c"]  # from the watch cache
    with pytest.raises(StatusError) as err:
        await pods.list(field_selector="spec.hostname=x")
    assert (err.value.reason, err.value.message) == ("BadRequest", "field label not supported: spec.hostname")
    with pytest.raises(StatusError) as err:
        await pods.list(label_selector="app in (")
    assert err.value.reason == "BadRequest"


async def test_pagination_is_a_consistent_snapshot(client: Clientset, namespace: str) -> None:
    cms = client.resource(core_pb2.ConfigMap, namespace)
    for i in range(7):
        await cms.create(core_pb2.ConfigMap(metadata={"name": f"cm-{i}"}))
    first = await cms.list(limit=3)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1", "cm-2"]
    assert first.continue_token and first.remaining == 4
    await cms.create(core_pb2.ConfigMap(metadata={"name": "cm-3a"}))  # after the snapshot: not seen
    await cms.delete("cm-6")  # after the snapshot: still seen
    second = await cms.list(limit=3, continue_token=first.continue_token)
    third = await cms.list(limit=3, continue_token=second.continue_token)
    assert [c.metadata.name for c in second.items + third.items] == ["cm-3", "cm-4", "cm-5", "cm-6"]
    assert not third.continue_token
    assert second.resource_version == first.resource_version
    with pytest.raises(StatusError, match="continue key is not valid"):
        await cms.list(limit=3, continue_token="garbage")


async def test_cluster_scoped_kinds_ignore_namespace(client: Clientset) -> None:
    pvs = client.resource(core_pb2.PersistentVolume, "ignored")
    pv = from_dict(core_pb2.PersistentVolume, {"metadata": {"name": "pv-crud", "namespace": "x"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv"}}})
    created = await pvs.create(pv)
    try:
        assert created.metadata.namespace == ""
        assert (await client.resource(core_pb2.PersistentVolume).get("pv-crud")).metadata.uid == created.metadata.uid
    finally:
        await pvs.delete("pv-crud")


async def test_wrong_kind_for_resource(client: Clientset, namespace: str) -> None:
    from google.protobuf import any_pb2

    from proto import api_pb2

    req = api_pb2.CreateRequest(resource="pods", namespace=namespace, object=any_pb2.Any(
        type_url="type.googleapis.com/kubelab.core.v1.ConfigMap", value=b""))
    with pytest.raises(StatusError) as err:
        await client.call(client._resources.Create, req)
    assert err.value.reason == "BadRequest"
    assert "ConfigMap cannot be handled as a Pod" in err.value.message


async def test_many_clients_at_once(client: Clientset, namespace: str) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await asyncio.gather(*(pods.create(make_pod(f"p-{i}")) for i in range(40)))
    assert len((await pods.list()).items) == 40
