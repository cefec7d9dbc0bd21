"""The controller benchmark's stand-in for scheduler and kubelets: hollow
nodes that do what tests/support/podsim.py does, concurrently.

PodSimulator handles one pod event at a time, which is right for tests and
far too slow for a thousand pods. This driver watches the namespace's pods
and keeps up to `concurrency` calls in flight, one pod at a time each: an
unscheduled pod is bound (pods/binding) to the next of the benchmark's Node
objects, a bound Pending pod becomes Running and Ready (one status update,
as a kubelet would make), a pod marked for deletion is removed with grace
0. Events for a pod that is being worked on wait, and only its latest state
is acted on.

The same watch keeps a census of the pods (`PodCensus`: live = not being
deleted, ready among those, and every object still stored), and a second
watch follows the Deployments, so the benchmark waits on what the cluster
shows rather than polling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from api import StatusError, rfc3339
from client import Clientset
from proto import apps_pb2, core_pb2

Pod = core_pb2.Pod


@dataclass
class PodCensus:
    live: int = 0
    ready: int = 0
    stored: int = 0
    _state: dict[str, tuple[bool, bool]] = field(default_factory=dict)

    def apply(self, kind: str, pod: Pod) -> None:
        name = pod.metadata.name
        before = self._state.pop(name, None)
        if before is not None:
            self.stored -= 1
            self.live -= before[0]
            self.ready -= before[0] and before[1]
        if kind == "DELETED":
            return
        live = not pod.metadata.deletionTimestamp
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
        self._state[name] = (live, ready)
        self.stored += 1
        self.live += live
        self.ready += live and ready


class Waiter:
    """Wake whoever waits for a condition over something a watch updates."""

    def __init__(self) -> None:
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Wait until check() holds; the monotonic time it first did."""
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(check)
        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s") from None
        return time.monotonic()


class PodDriver:
    def __init__(self, clientset: Clientset, namespace: str, nodes: list[str], *, concurrency: int = 48) -> None:
        self.cs = clientset
        self.namespace = namespace
        self.nodes = nodes
        self.census = PodCensus()
        self.deployments: dict[str, apps_pb2.Deployment] = {}
        self.changed = Waiter()
        self._next_node = itertools.cycle(nodes)
        self._slots = asyncio.Semaphore(concurrency)
        self._latest: dict[str, Pod] = {}
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self.errors = 0

    async def start(self) -> PodDriver:
        async def register(name: str) -> None:
            node = core_pb2.Node(metadata={"name": name, "labels": {"kubernetes.io/hostname": name}})
            node.status.conditions.add(type="Ready", status="True")
            for resource, amount in (("cpu", "32"), ("memory", "128Gi"), ("pods", "110")):
                node.status.capacity[resource].value = amount
                node.status.allocatable[resource].value = amount
            with contextlib.suppress(StatusError):
                await self.cs.resource(core_pb2.Node).create(node)
        await asyncio.gather(*(register(n) for n in self.nodes))
        pods = await self.cs.resource(Pod, self.namespace).list_all()
        deployments = await self.cs.resource(apps_pb2.Deployment, self.namespace).list_all()
        self._tasks = [asyncio.create_task(self._watch_pods(pods.resource_version)),
                       asyncio.create_task(self._watch_deployments(deployments.resource_version))]
        return self

    async def stop(self) -> None:
        for task in [*self._tasks, *self._workers]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._workers, return_exceptions=True)

    # ------------------------------------------------------------ watches

    async def _watch_pods(self, rv: str) -> None:
        client = self.cs.resource(Pod, self.namespace)
        while True:
            try:
                async for event in client.watch(resource_version=rv, bookmarks=True):
                    rv = event.resource_version or rv
                    if event.type == "BOOKMARK":
                        continue
                    self.census.apply(event.type, event.object)
                    if event.type != "DELETED":
                        self._dispatch(event.object)
                    await self.changed.notify()
            except StatusError:
                await asyncio.sleep(0.2)

    async def _watch_deployments(self, rv: str) -> None:
        client = self.cs.resource(apps_pb2.Deployment, self.namespace)
        while True:
            try:
                async for event in client.watch(resource_version=rv, bookmarks=True):
                    rv = event.resource_version or rv
                    if event.type in ("ADDED", "MODIFIED"):
                        self.deployments[event.object.metadata.name] = event.object
                    elif event.type == "DELETED":
                        self.deployments.pop(event.object.metadata.name, None)
                    await self.changed.notify()
            except StatusError:
                await asyncio.sleep(0.2)

    # ------------------------------------------------------------ playing kubelet

    def _dispatch(self, pod: Pod) -> None:
        name = pod.metadata.name
        self._latest[name] = pod
        if name in self._busy:
            return
        self._busy.add(name)
        task = asyncio.create_task(self._work(name))
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _work(self, name: str) -> None:
        try:
            while name in self._latest:
                pod = self._latest.pop(name)
                async with self._slots:
                    await self._step(pod)
        finally:
            self._busy.discard(name)

    async def _step(self, pod: Pod) -> None:
        pods = self.cs.resource(Pod, self.namespace)
        name = pod.metadata.name
        try:
            if pod.metadata.deletionTimestamp:
                await pods.delete(name, grace_period=0, uid=pod.metadata.uid)
            elif not pod.spec.nodeName:
                await pods.bind(name, next(self._next_node), uid=pod.metadata.uid)
            elif pod.status.phase in ("", "Pending"):
                await pods.update_status(_running(pod))
        except StatusError as err:
            if err.reason not in ("NotFound", "Conflict"):
                self.errors += 1


def _running(pod: Pod) -> Pod:
    now = rfc3339(time.time())
    new = Pod()
    new.CopyFrom(pod)
    new.status.phase = "Running"
    new.status.startTime = now
    new.status.hostIP = "192.0.2.1"
    new.status.podIP = "10.244.0.2"
    del new.status.containerStatuses[:]
    for c in pod.spec.containers:
        new.status.containerStatuses.add(name=c.name, image=c.image, ready=True, restartCount=0,
                                         state={"running": {"startedAt": now}})
    del new.status.conditions[:]
    for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        new.status.conditions.add(type=kind, status="True", lastTransitionTime=now)
    return new
