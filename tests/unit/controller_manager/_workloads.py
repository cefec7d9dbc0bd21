"""Running workload controllers on the in-memory clientset, for the unit
tests of replicaset, deployment and their helpers.

`Harness` and `settle()` come from _harness.py (one worker per controller).
`FakeKubelet` plays scheduler and kubelet for pods: binds them, makes them
Running and Ready (or not, per pod), removes pods marked for deletion.
Builders make objects as the apiserver would store them (defaults filled).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from api import FakeClock, StatusError, int_or_string, rfc3339
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

from ._harness import Harness, settle

__all__ = ["FakeKubelet", "Harness", "deployment", "orphan_pod", "replica_set", "set_ready", "settle", "template"]

Pod = core_pb2.Pod


class FakeKubelet:
    """Scheduler and kubelet in one: every new pod is bound to `node-1` and
    becomes Running and Ready at the clock's time, unless `ready(pod)`
    says not; a pod marked for deletion is removed."""

    def __init__(self, cs: FakeClientset, clock: FakeClock, *,
                 ready: Callable[[Pod], bool] = lambda _pod: True) -> None:
        self.cs, self.clock, self.ready = cs, clock, ready
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeKubelet:
        self._task = asyncio.create_task(self._run())
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pods = self.cs.resource(Pod)
        async for event in pods.watch():
            pod = event.object
            if event.type == "DELETED":
                continue
            client = self.cs.resource(Pod, pod.metadata.namespace)
            with contextlib.suppress(StatusError):  # raced with a change or a delete: the next event says
                if pod.metadata.deletionTimestamp:
                    await client.delete(pod.metadata.name, grace_period=0)
                elif not pod.status.phase:
                    await self.start(pod)

    async def start(self, pod: Pod, ready: bool | None = None) -> Pod:
        client = self.cs.resource(Pod, pod.metadata.namespace)
        new = await client.get(pod.metadata.name)
        new.spec.nodeName = new.spec.nodeName or "node-1"
        new.status.phase = "Running"
        is_ready = self.ready(pod) if ready is None else ready
        set_ready(new, is_ready, self.clock.now())
        stored = await client.update(new)
        new.metadata.resourceVersion = stored.metadata.resourceVersion
        return await client.update_status(new)

    async def set_ready(self, namespace: str, name: str, ready: bool) -> Pod:
        client = self.cs.resource(Pod, namespace)
        pod = await client.get(name)
        set_ready(pod, ready, self.clock.now())
        return await client.update_status(pod)


def set_ready(pod: Pod, ready: bool, now: float) -> None:
    kept = [c for c in pod.status.conditions if c.type != "Ready"]
    del pod.status.conditions[:]
    pod.status.conditions.extend(kept)
    pod.status.conditions.add(type="Ready", status="True" if ready else "False", lastTransitionTime=rfc3339(now))


# ---------------------------------------------------------------- builders


def template(labels: dict[str, str], image: str = "nginx:1.25") -> core_pb2.PodTemplateSpec:
    t = core_pb2.PodTemplateSpec()
    t.metadata.labels.update(labels)
    t.spec.containers.add(name="web", image=image)
    t.spec.restartPolicy = "Always"
    return t


def replica_set(name: str, replicas: int, labels: dict[str, str] | None = None, *, namespace: str = "ns",
                min_ready: int = 0) -> apps_pb2.ReplicaSet:
    labels = labels or {"app": name}
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name, rs.metadata.namespace = name, namespace
    rs.spec.replicas = replicas
    rs.spec.minReadySeconds = min_ready
    rs.spec.selector.matchLabels.update(labels)
    rs.spec.template.CopyFrom(template(labels))
    return rs


def deployment(name: str, replicas: int, *, namespace: str = "ns", image: str = "nginx:1.25",
               max_surge: int | str = "25%", max_unavailable: int | str = "25%", strategy: str = "RollingUpdate",
               min_ready: int = 0, history: int = 10, deadline: int = 600) -> apps_pb2.Deployment:
    labels = {"app": name}
    d = apps_pb2.Deployment()
    d.metadata.name, d.metadata.namespace = name, namespace
    d.spec.replicas = replicas
    d.spec.selector.matchLabels.update(labels)
    d.spec.template.CopyFrom(template(labels, image))
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        d.spec.strategy.rollingUpdate.maxSurge.CopyFrom(int_or_string(max_surge))
        d.spec.strategy.rollingUpdate.maxUnavailable.CopyFrom(int_or_string(max_unavailable))
    d.spec.minReadySeconds = min_ready
    d.spec.revisionHistoryLimit = history
    d.spec.progressDeadlineSeconds = deadline
    return d


def orphan_pod(name: str, labels: dict[str, str], *, namespace: str = "ns", ready: bool = True,
               node: str = "node-1", phase: str = "Running", created: float | None = None) -> Pod:
    pod = Pod()
    pod.metadata.name, pod.metadata.namespace = name, namespace
    pod.metadata.labels.update(labels)
    pod.spec.containers.add(name="web", image="nginx:1.25")
    pod.spec.nodeName = node
    pod.status.phase = phase
    if created is not None:
        pod.metadata.creationTimestamp = rfc3339(created)
    if phase == "Running":
        set_ready(pod, ready, created or 0)
    return pod
