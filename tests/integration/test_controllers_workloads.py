"""ReplicaSet, ReplicationController and Deployment controllers in a real
controller-manager process, on the real apiserver and etcd, with pod phases
and readiness played by the PodSimulator, and the rollout commands of the
CLI against them:

* a ReplicaSet restores 5 pods after deletions and never has more than 5
  (sampled on every pod watch event);
* a ReplicationController keeps its pods;
* a rolling update of 10 replicas (25%/25%) never has fewer than 8
  available nor more than 13 pods (sampled on every pod watch event);
  `rollout status` waits for it, `rollout history` lists it, `rollout undo`
  restores the previous template; `set image`, pause/resume and restart;
* a stalled rollout makes `rollout status` fail with kubectl's message once
  progressDeadlineSeconds has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result

from api import from_dict
from client import Clientset
from controller_manager.replicaset import is_pod_ready
from deploy.local import APIServerProcess, ComponentProcess
from proto import apps_pb2, core_pb2
from tests.integration.cli_support import Kubelab
from tests.support.podsim import PodSimulator
from tests.support.wait import eventually

from .conftest import start_component

Pod = core_pb2.Pod
NODES = ["wl-node-a", "wl-node-b", "wl-node-c"]


@pytest.fixture(scope="module")
def manager(apiserver: APIServerProcess, workdir: Path) -> Iterator[ComponentProcess]:
    proc = start_component("controller_manager", apiserver, workdir, "--leader-elect", "false",
                           "--controllers", "replicaset,replicationcontroller,deployment",
                           "--leader-elect-resource-name", f"wl-{uuid.uuid4().hex[:6]}")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def sim(client: Clientset, namespace: str, manager: ComponentProcess) -> AsyncIterator[PodSimulator]:
    simulator = await PodSimulator(client, NODES, namespace=namespace,
                                   ready=lambda pod: pod.spec.containers[0].image != "broken").start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def kubelab(apiserver: APIServerProcess) -> Kubelab:
    return Kubelab(apiserver.target)


async def cli(kubelab: Kubelab, *args: str) -> Result:
    """The CLI runs its own event loop: give it a thread."""
    return await asyncio.to_thread(kubelab, *args)


@dataclass
class PodCensus:
    """The namespace's pods as a watch sees them, counted after every event."""

    pods: dict[str, Pod] = field(default_factory=dict)
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # (live, available, images)

    def apply(self, kind: str, pod: Pod) -> None:
        if kind == "DELETED":
            self.pods.pop(pod.metadata.name, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.pods[pod.metadata.name] = pod
        else:
            return
        live = [p for p in self.pods.values() if not p.metadata.deletionTimestamp]
        available = sum(1 for p in live if is_pod_ready(p))
        self.samples.append((len(live), available, len({p.spec.containers[0].image for p in live})))

    @contextlib.asynccontextmanager
    async def watching(self, client: Clientset, namespace: str) -> AsyncIterator[PodCensus]:
        pods = client.resource(Pod, namespace)
        listed = await pods.list()
        for pod in listed.items:
            self.pods[pod.metadata.name] = pod

        async def run() -> None:
            async for event in pods.watch(resource_version=listed.resource_version):
                self.apply(event.type, event.object)
        task = asyncio.create_task(run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def live_ready_pods(client: Clientset, namespace: str) -> list[Pod]:
    pods = (await client.resource(Pod, namespace).list()).items
    return [p for p in pods if not p.metadata.deletionTimestamp and is_pod_ready(p)]


def deployment(name: str, replicas: int, image: str = "nginx:1.25", deadline: int = 600) -> apps_pb2.Deployment:
    return from_dict(apps_pb2.Deployment, {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "progressDeadlineSeconds": deadline,
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}}})


async def test_replica_set_restores_its_pods_and_never_overshoots(client: Clientset, namespace: str,
                                                                  sim: PodSimulator) -> None:
    rs = from_dict(apps_pb2.ReplicaSet, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    census = PodCensus()
    async with census.watching(client, namespace):
        await client.resource(apps_pb2.ReplicaSet, namespace).create(rs)

        async def five_ready() -> bool:
            return len(await live_ready_pods(client, namespace)) == 5
        await eventually(five_ready, what="5 ready pods")
        pods = client.resource(Pod, namespace)
        for round_ in range(3):
            victims = (await live_ready_pods(client, namespace))[:round_ + 1]
            await asyncio.gather(*(pods.delete(p.metadata.name) for p in victims))
            await eventually(five_ready, what=f"5 ready pods again after deleting {len(victims)}")

        async def status_caught_up() -> bool:
            s = (await client.resource(apps_pb2.ReplicaSet, namespace).get("web")).status
            return (s.replicas, s.readyReplicas, s.availableReplicas, s.observedGeneration) == (5, 5, 5, 1)
        await eventually(status_caught_up, what="status 5/5/5")
    assert max(live for live, _, _ in census.samples) == 5, census.samples
    owned = [p for p in (await client.resource(Pod, namespace).list()).items if not p.metadata.deletionTimestamp]
    assert all(p.metadata.ownerReferences[0].kind == "ReplicaSet" for p in owned)


async def test_replication_controller(client: Clientset, namespace: str, sim: PodSimulator) -> None:
    rc = from_dict(core_pb2.ReplicationController, {
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "legacy"}},
                                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    await client.resource(core_pb2.ReplicationController, namespace).create(rc)

    async def two_available() -> bool:
        s = (await client.resource(core_pb2.ReplicationController, namespace).get("legacy")).status
        return s.availableReplicas == 2 and len(await live_ready_pods(client, namespace)) == 2
    await eventually(two_available, what="2 available")


async def test_rolling_update_bounds_and_undo(client: Clientset, namespace: str, sim: PodSimulator,
                                              kubelab: Kubelab) -> None:
    deployments = client.resource(apps_pb2.Deployment, namespace)
    await deployments.create(deployment("web", 10))
    done = await cli(kubelab, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=60s")
    assert done.exit_code == 0, done.output
    assert done.output.strip().splitlines()[-1] == 'deployment "web" successfully rolled out'

    census = PodCensus()
    async with census.watching(client, namespace):
        updated = await cli(kubelab, "-n", namespace, "set", "image", "deploy/web", "web=nginx:1.26", "--record")
        assert updated.output == "deployment.apps/web image updated\n"
        status = await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/web", "--timeout=90s")
        assert status.exit_code == 0, status.output
        lines = status.output.strip().splitlines()
        assert lines[-1] == 'deployment "web" successfully rolled out'
        assert any(line.startswith('Waiting for deployment "web" rollout to finish: ') for line in lines), lines
        await eventually(lambda: _settled(client, namespace, "nginx:1.26"), what="only new pods left")
    assert census.samples
    for live, available, _images in census.samples:
        assert live <= 13, census.samples  # replicas + maxSurge (25% of 10, rounded up)
        assert available >= 8, census.samples  # replicas - maxUnavailable (25% of 10, rounded down)
    assert max(live for live, _, _ in census.samples) > 10  # it did surge

    history = await cli(kubelab, "-n", namespace, "rollout", "history", "deployment/web")
    assert history.output.splitlines() == [
        "deployment.apps/web ", "REVISION   CHANGE-CAUSE", "1          <none>",
        "2          kubelab set image deploy/web web=nginx:1.26 --record=true", ""], history.output
    detail = await cli(kubelab, "-n", namespace, "rollout", "history", "deployment/web", "--revision=1")
    assert "with revision #1" in detail.output and "nginx:1.25" in detail.output

    undone = await cli(kubelab, "-n", namespace, "rollout", "undo", "deployment/web")
    assert undone.output == "deployment.apps/web rolled back\n", undone.output
    d = await deployments.get("web")
    assert d.spec.template.spec.containers[0].image == "nginx:1.25"
    assert "kubernetes.io/change-cause" not in d.metadata.annotations  # revision 1 had none
    status = await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/web", "--timeout=90s")
    assert status.exit_code == 0, status.output
    await eventually(lambda: _settled(client, namespace, "nginx:1.25"), what="the old template back")
    d = await deployments.get("web")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    again = await cli(kubelab, "-n", namespace, "rollout", "history", "deploy/web")
    assert [line.split()[0] for line in again.output.splitlines()[2:] if line.strip()] == ["2", "3"]


async def _settled(client: Clientset, namespace: str, image: str) -> bool:
    pods = [p for p in (await client.resource(Pod, namespace).list()).items if not p.metadata.deletionTimestamp]
    return len(pods) == 10 and all(p.spec.containers[0].image == image and is_pod_ready(p) for p in pods)


async def test_pause_resume_restart(client: Clientset, namespace: str, sim: PodSimulator,
                                    kubelab: Kubelab) -> None:
    deployments = client.resource(apps_pb2.Deployment, namespace)
    await deployments.create(deployment("app", 2))
    assert (await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/app", "--timeout=60s")).exit_code == 0
    paused = await cli(kubelab, "-n", namespace, "rollout", "pause", "deployment/app")
    assert paused.output == "deployment.apps/app paused\n"
    again = await cli(kubelab, "-n", namespace, "rollout", "pause", "deployment/app")
    assert again.exit_code == 1 and 'error: deployments.apps "app" is already paused' in again.output
    await cli(kubelab, "-n", namespace, "set", "image", "deployment/app", "*=nginx:2")
    await asyncio.sleep(1.0)
    rss = (await client.resource(apps_pb2.ReplicaSet, namespace).list()).items
    assert len(rss) == 1  # paused: no rollout
    restart = await cli(kubelab, "-n", namespace, "rollout", "restart", "deploy/app")
    assert restart.exit_code == 1 and "can't restart paused deployment" in restart.output
    resumed = await cli(kubelab, "-n", namespace, "rollout", "resume", "deployment/app")
    assert resumed.output == "deployment.apps/app resumed\n"
    assert (await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/app", "--timeout=60s")).exit_code == 0
    restart = await cli(kubelab, "-n", namespace, "rollout", "restart", "deploy/app")
    assert restart.output == "deployment.apps/app restarted\n"
    assert (await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/app", "--timeout=60s")).exit_code == 0
    d = await deployments.get("app")
    assert "kubectl.kubernetes.io/restartedAt" in d.spec.template.metadata.annotations
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    missing = await cli(kubelab, "-n", namespace, "set", "image", "deploy/app", "nope=x")
    assert missing.exit_code == 1 and 'unable to find container named "nope"' in missing.output


async def test_rollout_status_fails_past_the_progress_deadline(client: Clientset, namespace: str,
                                                               sim: PodSimulator, kubelab: Kubelab) -> None:
    await client.resource(apps_pb2.Deployment, namespace).create(deployment("stuck", 2, "broken", deadline=5))
    result = await cli(kubelab, "-n", namespace, "rollout", "status", "deploy/stuck", "--timeout=60s")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == 'error: deployment "stuck" exceeded its progress deadline', lines
    assert 'Waiting for deployment "stuck" rollout to finish: 0 of 2 updated replicas are available...' in lines
