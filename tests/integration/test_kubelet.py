"""Hollow kubelets (`python -m kubelet --hollow N`) against a real apiserver
and etcd: nodes register and renew their Leases, a bound pod runs and
becomes Ready, deletion waits for the containers (SIGTERM, or SIGKILL when
the grace period runs out) before the pod goes, a Deployment's pods run
with the scheduler and controller-manager, and a static pod gets a mirror
pod.

Hollow containers are scripted through pod annotations
(`hollow.kubelab.io/script.<container>`), since the runtime lives in the
kubelet's process. Each test uses node names of its own and deletes its
nodes, leases and namespace afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from api import StatusError, from_dict
from client import ClientConfig, Clientset
from deploy.local import APIServerProcess, ComponentProcess
from proto import apps_pb2, coordination_pb2, core_pb2
from tests.support.wait import eventually

from .conftest import start_component


def pod(name: str, namespace: str, node: str = "", *, grace: int = 30, scripts: dict[str, dict[str, Any]] | None = None,
        **spec: Any) -> core_pb2.Pod:
    annotations = {f"hollow.kubelab.io/script.{c}": json.dumps(s) for c, s in (scripts or {}).items()}
    return from_dict(core_pb2.Pod, {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": grace,
                 "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}], **spec}})


def condition(obj: Any, type_: str) -> str:
    return next((c.status for c in obj.status.conditions if c.type == type_), "")


class HollowNodes:
    """A hollow kubelet process with N nodes, and their cleanup."""

    def __init__(self, cs: Clientset, api: APIServerProcess, workdir: Path, n: int, *extra: str) -> None:
        self.cs = cs
        self.prefix = f"hn-{uuid.uuid4().hex[:6]}-"
        self.names = [f"{self.prefix}{i}" for i in range(n)]
        self.proc = start_component("kubelet", api, workdir, "--hollow", str(n), "--name-prefix", self.prefix,
                                    "--node-status-update-frequency", "2", *extra)

    async def ready(self) -> None:
        async def all_ready() -> bool:
            nodes = [n for n in (await self.cs.resource(core_pb2.Node).list()).items if n.metadata.name in self.names]
            return len(nodes) == len(self.names) and all(condition(n, "Ready") == "True" for n in nodes)
        await eventually(all_ready, f"nodes {self.names} Ready")

    async def cleanup(self) -> None:
        self.proc.stop()
        for name in self.names:
            for client in (self.cs.resource(core_pb2.Node),
                           self.cs.resource(coordination_pb2.Lease, "kube-node-lease")):
                try:
                    await client.delete(name)
                except StatusError:
                    pass


@pytest.fixture
async def hollow(client: Clientset, apiserver: APIServerProcess, workdir: Path) -> AsyncIterator[HollowNodes]:
    nodes = HollowNodes(client, apiserver, workdir, 2)
    try:
        await nodes.ready()
        yield nodes
    finally:
        await nodes.cleanup()


async def test_nodes_register_and_renew_their_leases(client: Clientset, hollow: HollowNodes) -> None:
    node = await client.resource(core_pb2.Node).get(hollow.names[0])
    assert node.metadata.labels["kubernetes.io/hostname"] == hollow.names[0]
    assert node.metadata.labels["kubernetes.io/os"] == "linux"
    assert {c.type for c in node.status.conditions} == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert node.status.capacity["pods"].value == "110"
    assert any(a.type == "InternalIP" for a in node.status.addresses)
    leases = client.resource(coordination_pb2.Lease, "kube-node-lease")
    first = await leases.get(hollow.names[1])
    assert first.spec.holderIdentity == hollow.names[1] and first.spec.leaseDurationSeconds == 40

    async def renewed() -> bool:
        return (await leases.get(hollow.names[1])).spec.renewTime != first.spec.renewTime
    await eventually(renewed, "a lease renewal", timeout=30)


async def test_bound_pod_runs_and_becomes_ready(client: Clientset, namespace: str, hollow: HollowNodes) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    p = pod("web", namespace, hollow.names[0], initContainers=[{"name": "init", "image": "busybox:1.36"}],
            scripts={"init": {"run_seconds": 0.5}})
    await pods.create(p)

    async def ready() -> bool:
        got = await pods.get("web")
        return got.status.phase == "Running" and condition(got, "Ready") == "True"
    await eventually(ready, "pod web Running and Ready")
    got = await pods.get("web")
    assert got.status.podIP and got.status.hostIP and got.status.startTime
    assert got.status.qosClass == "BestEffort"
    assert got.status.initContainerStatuses[0].state.terminated.reason == "Completed"
    assert got.status.containerStatuses[0].ready and got.status.containerStatuses[0].restartCount == 0
    events = (await client.resource(core_pb2.Event, namespace).list()).items
    reasons = {e.reason for e in events if e.involvedObject.name == "web"}
    assert {"Created", "Started"} <= reasons


async def _final_status(client: Clientset, namespace: str, name: str,
                        action: Callable[[], Awaitable[object]]) -> core_pb2.PodStatus:
    """The status the pod had when it was removed."""
    pods = client.resource(core_pb2.Pod, namespace)
    start = (await pods.get(name)).metadata.resourceVersion
    last: list[core_pb2.PodStatus] = []

    async def watch() -> None:
        async for event in pods.watch(resource_version=start):
            last.append(event.object.status)
            if event.type == "DELETED":
                return

    task = asyncio.create_task(watch())
    await action()
    await asyncio.wait_for(task, 60)
    return last[-1]


async def test_deletion_waits_for_sigterm(client: Clientset, namespace: str, hollow: HollowNodes) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await pods.create(pod("slow", namespace, hollow.names[1], grace=30,
                          scripts={"app": {"term_seconds": 2, "term_exit_code": 0}}))

    async def running() -> bool:
        return (await pods.get("slow")).status.phase == "Running"
    await eventually(running, "pod slow Running")

    async def delete() -> None:
        gone = await pods.delete("slow")
        assert gone.metadata.deletionTimestamp  # marked, kept for the kubelet
    final = await _final_status(client, namespace, "slow", delete)
    assert final.containerStatuses[0].state.terminated.exitCode == 0  # exited on SIGTERM
    assert final.phase == "Succeeded"


async def test_grace_period_runs_out_into_sigkill(client: Clientset, namespace: str, hollow: HollowNodes) -> None:
    pods = client.resource(core_pb2.Pod, namespace)
    await pods.create(pod("stubborn", namespace, hollow.names[1], grace=3, scripts={"app": {"term_seconds": 1000}}))

    async def running() -> bool:
        return (await pods.get("stubborn")).status.phase == "Running"
    await eventually(running, "pod stubborn Running")
    final = await _final_status(client, namespace, "stubborn", lambda: pods.delete("stubborn"))
    assert final.containerStatuses[0].state.terminated.exitCode == 137
    assert final.phase == "Failed"


MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: static-web
  namespace: {ns}
spec:
  containers:
  - name: web
    image: registry.k8s.io/pause:3.9
"""


async def test_static_pod_gets_a_mirror_pod(client: Clientset, namespace: str, apiserver: APIServerProcess,
                                            workdir: Path) -> None:
    manifests = workdir / f"manifests-{namespace}"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(MANIFEST.format(ns=namespace))
    nodes = HollowNodes(client, apiserver, workdir, 1, "--pod-manifest-path", str(manifests),
                        "--file-check-frequency", "1")
    pods = client.resource(core_pb2.Pod, namespace)
    name = f"static-web-{nodes.names[0]}"
    try:
        await nodes.ready()

        async def mirrored() -> bool:
            got = await pods.get(name)
            return got.status.phase == "Running" and "kubernetes.io/config.mirror" in got.metadata.annotations
        await eventually(mirrored, "the mirror pod Running")
        (manifests / "web.yaml").unlink()

        async def gone() -> bool:
            try:
                await pods.get(name)
            except StatusError as err:
                return err.reason == "NotFound"
            return False
        await eventually(gone, "the mirror pod removed with its manifest")
    finally:
        await nodes.cleanup()
        shutil.rmtree(manifests, ignore_errors=True)


# ---------------------------------------------------------------- with scheduler and controller-manager




async def test_deployment_pods_run_on_hollow_nodes(cluster: APIServerProcess, workdir: Path) -> None:
    cs = Clientset.connect(ClientConfig(server=cluster.target))
    procs: list[ComponentProcess] = []
    nodes = HollowNodes(cs, cluster, workdir, 3)
    try:
        procs.append(start_component("scheduler", cluster, workdir, "--leader-elect", "false"))
        procs.append(start_component("controller_manager", cluster, workdir, "--leader-elect", "false"))
        await nodes.ready()
        deployment = from_dict(apps_pb2.Deployment, {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]}}}})
        await cs.resource(apps_pb2.Deployment, "default").create(deployment)

        async def available() -> bool:
            got = await cs.resource(apps_pb2.Deployment, "default").get("web")
            return got.status.availableReplicas == 6
        await eventually(available, "6 available replicas", timeout=60)
        pods = (await cs.resource(core_pb2.Pod, "default").list(label_selector="app=web")).items
        assert len(pods) == 6
        assert all(p.status.phase == "Running" and condition(p, "Ready") == "True" for p in pods)
        assert {p.spec.nodeName for p in pods} <= set(nodes.names)
        assert len({p.status.podIP for p in pods}) == 6
    finally:
        for proc in procs:
            proc.stop()
        await nodes.cleanup()
        await cs.close()
