"""Pods that run without nodes: the test stand-in for scheduler and kubelet.

Controller tests need pods to be scheduled, start, become ready, finish
and go away, but not to run anything. PodSimulator watches pods through the
real apiserver and plays both parts through the real API: an unscheduled
pod is bound to one of the test's Node objects (round robin, through the
pods/binding subresource), a bound pod goes Running and Ready (or stays
not-ready while the test says so), a pod marked for deletion is removed
with grace 0 as a kubelet would, and tests can end a pod with a phase and
an exit code. Everything goes through the same calls a kubelet would make,
so the controllers under test see exactly what they would see in a
cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable

from api import StatusError, rfc3339
from client import Clientset
from proto import core_pb2

Pod = core_pb2.Pod


def _condition(pod: Pod, kind: str, status: str, now: str) -> None:
    kept = [c for c in pod.status.conditions if c.type != kind]
    kept.append(core_pb2.PodCondition(type=kind, status=status, lastTransitionTime=now))
    del pod.status.conditions[:]
    pod.status.conditions.extend(kept)


class PodSimulator:
    def __init__(self, clientset: Clientset, nodes: list[str], *, namespace: str = "",
                 ready: Callable[[Pod], bool] = lambda _pod: True, schedule: bool = True) -> None:
        self.cs = clientset
        self.nodes = nodes
        self.namespace = namespace
        self.ready = ready
        self.schedule = schedule
        self._next_node = itertools.cycle(nodes) if nodes else None
        self._task: asyncio.Task[None] | None = None
        self._not_ready: set[tuple[str, str]] = set()
        self._addresses = itertools.count(2)

    async def start(self) -> PodSimulator:
        for name in self.nodes:
            node = core_pb2.Node(metadata={"name": name, "labels": {"kubernetes.io/hostname": name}})
            node.status.conditions.add(type="Ready", status="True")
            for resource, amount in (("cpu", "4"), ("memory", "8Gi"), ("pods", "110")):
                node.status.capacity[resource].value = amount
                node.status.allocatable[resource].value = amount
            with contextlib.suppress(StatusError):
                await self.cs.resource(core_pb2.Node).create(node)
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pods = self.cs.resource(Pod, self.namespace)
        while True:
            try:
                async for event in pods.watch(resource_version="0"):
                    if event.type in ("ADDED", "MODIFIED"):
                        await self._step(event.object)
            except StatusError:
                await asyncio.sleep(0.2)

    async def _step(self, pod: Pod) -> None:
        pods = self.cs.resource(Pod, pod.metadata.namespace)
        name = pod.metadata.name
        try:
            if pod.metadata.deletionTimestamp:
                await pods.delete(name, grace_period=0, uid=pod.metadata.uid)
            elif not pod.spec.nodeName and self.schedule and self._next_node is not None:
                await pods.bind(name, next(self._next_node), uid=pod.metadata.uid)
            elif pod.spec.nodeName and pod.status.phase == "Pending":
                await self._start(pod)
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                raise

    async def _start(self, pod: Pod) -> None:
        now = rfc3339(time.time())
        n = next(self._addresses)
        new = Pod()
        new.CopyFrom(pod)
        new.status.phase = "Running"
        new.status.startTime = now
        new.status.hostIP = "192.0.2.1"
        new.status.podIP = f"10.244.{n // 250}.{n % 250 + 2}"
        ready = self.ready(pod) and (pod.metadata.namespace, pod.metadata.name) not in self._not_ready
        del new.status.containerStatuses[:]
        for c in pod.spec.containers:
            new.status.containerStatuses.add(name=c.name, image=c.image, ready=ready, restartCount=0,
                                             state={"running": {"startedAt": now}})
        for kind in ("Initialized", "ContainersReady", "Ready"):
            _condition(new, kind, "True" if ready or kind == "Initialized" else "False", now)
        await self.cs.resource(Pod, pod.metadata.namespace).update_status(new)

    async def set_ready(self, namespace: str, name: str, ready: bool) -> Pod:
        """Flip a running pod's readiness, as a readiness probe would."""
        key = (namespace, name)
        if ready:
            self._not_ready.discard(key)
        else:
            self._not_ready.add(key)
        pods = self.cs.resource(Pod, namespace)
        pod = await pods.get(name)
        now = rfc3339(time.time())
        for cs in pod.status.containerStatuses:
            cs.ready = ready
        for kind in ("ContainersReady", "Ready"):
            _condition(pod, kind, "True" if ready else "False", now)
        return await pods.update_status(pod)

    async def finish(self, namespace: str, name: str, *, succeeded: bool = True, exit_code: int | None = None) -> Pod:
        """End a pod as its containers exiting would: Succeeded or Failed."""
        pods = self.cs.resource(Pod, namespace)
        pod = await pods.get(name)
        now = rfc3339(time.time())
        code = exit_code if exit_code is not None else (0 if succeeded else 1)
        pod.status.phase = "Succeeded" if succeeded else "Failed"
        for cs in pod.status.containerStatuses:
            cs.ready = False
            cs.state.Clear()
            cs.state.terminated.exitCode = code
            cs.state.terminated.reason = "Completed" if code == 0 else "Error"
            cs.state.terminated.finishedAt = now
        for kind in ("ContainersReady", "Ready"):
            _condition(pod, kind, "False", now)
        return await pods.update_status(pod)
