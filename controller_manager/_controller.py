"""The shape of every controller: informers feed a work queue, workers
call one `sync(key)`.

Event handlers only enqueue a `namespace/name` key (an object owned by
another maps to its owner's key). A worker takes a key, calls `sync(key)`,
and on success forgets its failure history; when `sync` raises, the key is
re-queued with per-item exponential backoff under a global rate limit
(client's RateLimitingQueue). `sync` reads from informer caches, never the
API, treats "not found" as done, never mutates a cached object (copy
first), and is safe to call again for the same key at any time: it
compares the world with the object and closes the gap.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from google.protobuf.message import Message

from api import Clock, StatusError
from client import (
    Clientset,
    DeletedFinalStateUnknown,
    EventRecorder,
    QueueShutDown,
    RateLimitingQueue,
    SharedInformerFactory,
    object_key,
)

log = logging.getLogger(__name__)


@dataclass
class ControllerContext:
    """What the manager hands every controller."""

    clientset: Clientset
    informers: SharedInformerFactory
    recorder: EventRecorder
    clock: Clock
    options: argparse.Namespace


class Controller:
    #: The name `--controllers` and the metrics use ("replicaset", ...).
    name: ClassVar[str] = ""
    #: Workers when `--concurrent-<name>-syncs` is not given.
    default_workers: ClassVar[int] = 5
    #: The source its Events name (kube-controller-manager's component
    #: names, e.g. "replicaset-controller"); default "<name>-controller".
    event_source: ClassVar[str] = ""

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.clientset = ctx.clientset
        self.recorder = ctx.recorder.for_component(self.event_source or f"{self.name}-controller")
        self.clock = ctx.clock
        self.queue: RateLimitingQueue[str] = RateLimitingQueue(name=self.name, clock=ctx.clock)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        """Controller-specific flags (e.g. --node-monitor-grace-period)."""

    # ------------------------------------------------------------ keys

    def enqueue(self, obj: Message | DeletedFinalStateUnknown[Any]) -> None:
        self.queue.add(object_key(obj))

    def enqueue_after(self, obj: Message, seconds: float) -> None:
        self.queue.add_after(object_key(obj), seconds)

    # ------------------------------------------------------------ work

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    def periodic(self) -> list[tuple[float, Callable[[], None], bool]]:
        """Work beside the keys, done every so often: (period in seconds,
        function, whether it runs once at start too); a node monitor, a
        resync of every object (Kubernetes' `wait.Until` loops)."""
        return []

    async def _every(self, period: float, fn: Callable[[], None], at_start: bool) -> None:
        if not at_start:
            await self.clock.sleep(period)
        while True:
            try:
                fn()
            except Exception:  # the loop goes on, as wait.Until's does after a crash
                log.exception("%s: periodic %s failed", self.name, getattr(fn, "__name__", fn))
            await self.clock.sleep(period)

    async def run(self, workers: int) -> None:
        """Process keys with `workers` workers, and run the periodic work,
        until cancelled."""
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}") for i in range(workers)]
        tasks += [asyncio.create_task(self._every(period, fn, at_start), name=f"{self.name} periodic")
                  for period, fn, at_start in self.periodic()]
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shut_down()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self.sync(key)
                self.queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # retried with backoff; the log says why
                # API refusals (a Conflict, a NotFound) are normal in a
                # controller's life and logged without a stack.
                log.warning("%s: syncing %s failed (retry %d): %s", self.name, key, self.queue.num_requeues(key),
                            err, exc_info=not isinstance(err, StatusError))
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
