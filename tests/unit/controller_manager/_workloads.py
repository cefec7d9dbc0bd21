"""Running workload controllers on the in-memory clientset, for the unit
tests of replicaset, deployment and their helpers.

`Harness` wires controllers as the controller-manager does (one shared
informer factory, an event recorder, a ControllerContext) over a
FakeClientset and a FakeClock, and runs their workers as tasks;
`settle()` lets every runnable task run until nothing is left to do, and
`advance(seconds)` moves the clock (waking delayed keys and backoffs).
`FakeKubelet` plays scheduler and kubelet for pods: binds them, makes them
Running and Ready (or not, per pod), removes pods marked for deletion.
Builders make objects as the apiserver would store them (defaults filled).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast

from api import FakeClock, StatusError, int_or_string, rfc3339
from client import Clientset, EventBroadcaster, SharedInformerFactory
from controller_manager._controller import Controller, ControllerContext
from proto import apps_pb2, core_pb2
from tests.support.fakeclient import FakeClientset

Pod = core_pb2.Pod


async def settle(rounds: int = 30) -> None:
    """Let every runnable task run until `rounds` passes in a row find the
    loop idle (the fake client never does real I/O)."""
    loop = asyncio.get_running_loop()
    quiet = 0
    while quiet < rounds:
        before = len(loop._ready)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        quiet = quiet + 1 if before == 0 else 0


class Harness:
    def __init__(self, *controllers: type[Controller], clock: FakeClock | None = None,
                 cs: FakeClientset | None = None) -> None:
        self.clock = clock or FakeClock()
        self.cs = cs or FakeClientset(clock=self.clock)
        self.classes = controllers
        self.controllers: list[Controller] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Harness:
        clientset = cast(Clientset, self.cs)
        self.informers = SharedInformerFactory(clientset, clock=self.clock)
        self.broadcaster = EventBroadcaster(clientset, "controller-manager", clock=self.clock)
        ctx = ControllerContext(clientset, self.informers, self.broadcaster.new_recorder(), self.clock,
                                argparse.Namespace())
        self.controllers = [cls(ctx) for cls in self.classes]
        self.informers.start()
        await self.informers.wait_for_cache_sync(5)
        self._tasks = [asyncio.create_task(c.run(1)) for c in self.controllers]
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.shutdown()
        await self.broadcaster.shutdown(0.1)

    def controller(self, cls: type[Controller]) -> Any:
        return next(c for c in self.controllers if isinstance(c, cls))

    async def advance(self, seconds: float, tick: float = 0.5) -> None:
        await settle()
        left = seconds
        while left > 1e-9:
            step = min(tick, left)
            self.clock.step(step)
            left -= step
            await settle()

    # ------------------------------------------------------------ reading the store

    def pods(self, namespace: str = "ns", *, active: bool = True) -> list[Pod]:
        pods = self.cs.objects(Pod, namespace)
        return [p for p in pods if not (active and p.metadata.deletionTimestamp)]

    def events(self, reason: str) -> list[core_pb2.Event]:
        return [e for e in self.cs.objects(core_pb2.Event) if e.reason == reason]


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
