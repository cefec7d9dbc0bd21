"""The rollout strategies (deployment/rolling.py, recreate.py) with the
ReplicaSet controller and a fake kubelet on the in-memory clientset: a
rolling update stays within replicas + maxSurge pods and replicas -
maxUnavailable available at every step, for several surge/unavailable
settings; unavailable old pods are cleaned up first; Recreate never runs
old and new pods together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from controller_manager.deployment import DeploymentController
from controller_manager.replicaset import ReplicaSetController, is_pod_ready
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

from ._workloads import FakeKubelet, Harness, deployment, settle

Pod = core_pb2.Pod
Deployment = apps_pb2.Deployment


class Sampler:
    """Counts pods after every pod event: (non-terminating, ready and not
    terminating, per image)."""

    def __init__(self, cs: FakeClientset) -> None:
        self.cs = cs
        self.samples: list[tuple[int, int, dict[str, int]]] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Sampler]:
        async def watch() -> None:
            async for _event in self.cs.resource(Pod, "ns").watch():
                pods = [p for p in self.cs.objects(Pod, "ns") if not p.metadata.deletionTimestamp]
                images: dict[str, int] = {}
                for p in pods:
                    images[p.spec.containers[0].image] = images.get(p.spec.containers[0].image, 0) + 1
                self.samples.append((len(pods), sum(1 for p in pods if is_pod_ready(p)), images))
        task = asyncio.create_task(watch())
        await settle()
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def set_image(h: Harness, name: str, image: str) -> None:
    client = h.cs.resource(Deployment, "ns")
    d = await client.get(name)
    d.spec.template.spec.containers[0].image = image
    await client.update(d)


def complete(h: Harness, name: str = "web") -> apps_pb2.DeploymentStatus:
    d = next(x for x in h.cs.objects(Deployment, "ns") if x.metadata.name == name)
    return d.status


@pytest.mark.parametrize(("surge", "unavailable", "low", "high"), [
    ("25%", "25%", 8, 13),
    (0, 1, 9, 10),
    (3, 0, 10, 13),
    ("50%", "50%", 5, 15),
])
async def test_rolling_update_stays_within_bounds(surge: int | str, unavailable: int | str, low: int,
                                                  high: int) -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(
            deployment("web", 10, max_surge=surge, max_unavailable=unavailable))
        await settle()
        assert complete(h).availableReplicas == 10
        async with Sampler(h.cs).running() as sampler:
            await set_image(h, "web", "nginx:2")
            await settle()
        status = complete(h)
        assert (status.replicas, status.updatedReplicas, status.availableReplicas) == (10, 10, 10)
        assert all(p.spec.containers[0].image == "nginx:2" for p in h.pods())
        assert sampler.samples, "the sampler saw nothing"
        for total, ready, _images in sampler.samples:
            assert total <= high, sampler.samples
            assert ready >= low, sampler.samples
        assert max(t for t, _, _ in sampler.samples) == high  # it did use the surge it had
        rss = h.cs.objects(apps_pb2.ReplicaSet, "ns")
        assert sorted(rs.spec.replicas for rs in rss) == [0, 10]


async def test_unavailable_old_pods_go_first_and_unblock_the_rollout() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, \
            FakeKubelet(h.cs, h.clock, ready=lambda pod: pod.spec.containers[0].image != "broken") as kubelet:
        await h.cs.resource(Deployment, "ns").create(deployment("web", 4, max_surge=0, max_unavailable=1))
        await settle()
        # A bad rollout: the new pods never become ready, so it stalls at
        # one unavailable pod.
        await set_image(h, "web", "broken")
        await settle()
        assert complete(h).availableReplicas == 3
        # Fixing it: the broken pods are unavailable and go first.
        await set_image(h, "web", "nginx:3")
        await settle()
        status = complete(h)
        assert (status.updatedReplicas, status.availableReplicas, status.replicas) == (4, 4, 4)
        assert {p.spec.containers[0].image for p in h.pods()} == {"nginx:3"}
        assert kubelet is not None


async def test_recreate_never_overlaps() -> None:
    async with Harness(ReplicaSetController, DeploymentController) as h, FakeKubelet(h.cs, h.clock):
        await h.cs.resource(Deployment, "ns").create(deployment("web", 3, strategy="Recreate"))
        await settle()
        assert complete(h).availableReplicas == 3
        async with Sampler(h.cs).running() as sampler:
            await set_image(h, "web", "nginx:2")
            await settle()
        assert all(len(images) <= 1 for _, _, images in sampler.samples), sampler.samples
        assert any(total == 0 for total, _, _ in sampler.samples)  # all old gone before new came
        status = complete(h)
        assert (status.updatedReplicas, status.availableReplicas) == (3, 3)
        assert {p.spec.containers[0].image for p in h.pods()} == {"nginx:2"}
