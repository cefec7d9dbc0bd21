"""Running the cluster controllers (endpoints, node lifecycle, namespace,
garbage collector, quota, volumes, pod GC, tokens) on the in-memory
clientset, for their unit tests.

They run on tests/support/fakeclient.py's FakeClientset, which plays the
apiserver behaviours they depend on: a delete's propagationPolicy becomes
the `foregroundDeletion` / `orphan` finalizer, and a Namespace is kept,
Terminating, while its spec.finalizers hold it, until the `finalize`
subresource empties them.

`Harness` wires controllers as the controller-manager does (shared
informers, an event recorder, a ControllerContext with the given flag
values) on a FakeClock, runs their workers, and lets the test `settle()`
(run every task until the loop is idle) and `advance(seconds)` the clock.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, TypeVar, cast

from google.protobuf.message import Message

from api import FakeClock, StatusError
from client import Clientset, EventBroadcaster, SharedInformerFactory
from controller_manager._controller import Controller, ControllerContext
from proto import core_pb2, meta_pb2
from tests.support.fakeclient import FakeClientset, FakeResourceClient

T = TypeVar("T", bound=Message)


async def settle(rounds: int = 30) -> None:
    """Let every runnable task run until `rounds` passes in a row find the
    loop idle (the fake client does no real I/O)."""
    loop = asyncio.get_running_loop()
    quiet = 0
    while quiet < rounds:
        before = len(loop._ready)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        quiet = quiet + 1 if before == 0 else 0


class Harness:
    def __init__(self, *controllers: type[Controller], clock: FakeClock | None = None,
                 cs: FakeClientset | None = None, **options: Any) -> None:
        self.clock = clock or FakeClock()
        self.cs = cs or FakeClientset(clock=self.clock)
        self.classes = controllers
        self.options = argparse.Namespace(**options)
        self.controllers: list[Controller] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Harness:
        clientset = cast(Clientset, self.cs)
        self.informers = SharedInformerFactory(clientset, clock=self.clock)
        self.broadcaster = EventBroadcaster(clientset, "controller-manager", clock=self.clock)
        ctx = ControllerContext(clientset, self.informers, self.broadcaster.new_recorder(), self.clock, self.options)
        self.controllers = [cls(ctx) for cls in self.classes]
        self.informers.start()
        await self.informers.wait_for_cache_sync(5)
        self._tasks = [asyncio.create_task(c.run(2)) for c in self.controllers]
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.shutdown()
        await self.broadcaster.shutdown(0.1)

    @property
    def controller(self) -> Any:
        return self.controllers[0]

    async def advance(self, seconds: float, tick: float = 0.5) -> None:
        await settle()
        left = seconds
        while left > 1e-9:
            step = min(tick, left)
            self.clock.step(step)
            left -= step
            await settle()

    def client(self, kind: type[T], namespace: str = "") -> FakeResourceClient[T]:
        return cast(FakeResourceClient[T], self.cs.resource(kind, namespace))

    async def create(self, obj: T) -> T:
        created = await self.client(type(obj), obj.metadata.namespace).create(obj)  # type: ignore[attr-defined]
        await settle()
        return created

    def get(self, kind: type[T], namespace: str, name: str) -> T | None:
        found = [o for o in self.cs.objects(kind, namespace) if o.metadata.name == name]  # type: ignore[attr-defined]
        return found[0] if found else None

    def events(self, reason: str) -> list[core_pb2.Event]:
        return [e for e in self.cs.objects(core_pb2.Event) if e.reason == reason]


def meta(obj: Any, name: str, namespace: str = "", **labels: str) -> Any:
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels)
    return obj


def owner_ref(owner: Any, *, block: bool = False, controller: bool = False) -> meta_pb2.OwnerReference:
    from api import SCHEME
    kind = SCHEME.for_message(owner)
    ref = meta_pb2.OwnerReference(apiVersion=kind.api_version, kind=kind.kind, name=owner.metadata.name,
                                  uid=owner.metadata.uid)
    if block:
        ref.blockOwnerDeletion = True
    if controller:
        ref.controller = True
    return ref


def set_ready(pod: core_pb2.Pod, ready: bool) -> None:
    kept = [c for c in pod.status.conditions if c.type != "Ready"]
    del pod.status.conditions[:]
    pod.status.conditions.extend(kept)
    pod.status.conditions.add(type="Ready", status="True" if ready else "False")


def running_pod(name: str, namespace: str = "ns", *, ip: str = "", node: str = "node-1", ready: bool = True,
                labels: dict[str, str] | None = None, ports: dict[str, int] | None = None) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    meta(pod, name, namespace, **(labels or {}))
    container = pod.spec.containers.add(name="web", image="nginx")
    for port_name, number in (ports or {}).items():
        container.ports.add(name=port_name, containerPort=number, protocol="TCP")
    pod.spec.nodeName = node
    pod.status.phase = "Running"
    pod.status.podIP = ip
    set_ready(pod, ready)
    return pod


async def expect_error(awaitable: Any, reason: str) -> StatusError:
    try:
        await awaitable
    except StatusError as err:
        assert err.reason == reason, err
        return err
    raise AssertionError(f"expected a {reason} error")
