"""Running controllers on the in-memory clientset, as the controller-manager
runs them, for their unit tests.

`Harness` wires controllers the way controller_manager/_manager.py does (one
shared informer factory, an event recorder, a ControllerContext with the
given flag values) over tests/support/fakeclient.py's FakeClientset and a
FakeClock, and runs their workers as tasks. `settle()` lets every runnable
task run until nothing is left to do; `advance(seconds)` moves the clock,
waking delayed keys and backoffs.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, ClassVar, Self, TypeVar, cast

from google.protobuf.message import Message

from api import FakeClock
from client import Clientset, EventBroadcaster, SharedInformerFactory
from controller_manager._controller import Controller, ControllerContext
from proto import core_pb2
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
    #: Workers per controller.
    workers: ClassVar[int] = 1

    def __init__(self, *controllers: type[Controller], clock: FakeClock | None = None,
                 cs: FakeClientset | None = None, **options: Any) -> None:
        self.clock = clock or FakeClock()
        self.cs = cs or FakeClientset(clock=self.clock)
        self.classes = controllers
        self.options = argparse.Namespace(**options)
        self.controllers: list[Controller] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        clientset = cast(Clientset, self.cs)
        self.informers = SharedInformerFactory(clientset, clock=self.clock)
        self.broadcaster = EventBroadcaster(clientset, "controller-manager", clock=self.clock)
        ctx = ControllerContext(clientset, self.informers, self.broadcaster.new_recorder(), self.clock, self.options)
        self.controllers = [cls(ctx) for cls in self.classes]
        self.informers.start()
        await self.informers.wait_for_cache_sync(5)
        self._tasks = [asyncio.create_task(c.run(self.workers)) for c in self.controllers]
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.shutdown()
        await self.broadcaster.shutdown(0.1)

    def controller(self, cls: type[Controller] | None = None) -> Any:
        """The running controller of that class (the first one by default)."""
        if cls is None:
            return self.controllers[0]
        return next(c for c in self.controllers if isinstance(c, cls))

    async def advance(self, seconds: float, tick: float = 0.5) -> None:
        await settle()
        left = seconds
        while left > 1e-9:
            step = min(tick, left)
            self.clock.step(step)
            left -= step
            await settle()

    # ------------------------------------------------------------ the store

    def client(self, kind: type[T], namespace: str = "") -> FakeResourceClient[T]:
        return cast(FakeResourceClient[T], self.cs.resource(kind, namespace))

    async def create(self, obj: T) -> T:
        created = await self.client(type(obj), obj.metadata.namespace).create(obj)  # type: ignore[attr-defined]
        await settle()
        return created

    def get(self, kind: type[T], namespace: str, name: str) -> T | None:
        found = [o for o in self.cs.objects(kind, namespace) if o.metadata.name == name]  # type: ignore[attr-defined]
        return found[0] if found else None

    def pods(self, namespace: str = "ns", *, active: bool = True) -> list[core_pb2.Pod]:
        pods = self.cs.objects(core_pb2.Pod, namespace)
        return [p for p in pods if not (active and p.metadata.deletionTimestamp)]

    def events(self, reason: str) -> list[core_pb2.Event]:
        return [e for e in self.cs.objects(core_pb2.Event) if e.reason == reason]
