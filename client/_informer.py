"""The Informer: a Reflector, an indexed cache and event handlers, in one.

A component asks an informer for a kind, registers handlers and starts it;
from then on the cache (read through a Lister) mirrors the apiserver, and
every change is announced to the handlers:

* `on_add(obj)`, `on_update(old, new)`, `on_delete(obj)`;
* a relist (after Gone) announces only differences: adds for new objects,
  updates for those whose resourceVersion moved, and for an object that
  went away meanwhile a `DeletedFinalStateUnknown` tombstone holding the
  last state the cache had;
* with a resync period, every cached object is re-announced as
  `on_update(obj, obj)` each period, so a controller that dropped a key
  gets another chance (old and new are the same object, so a handler can
  tell a resync from a change by comparing resourceVersions).

Handlers run synchronously on the event loop after the cache has been
updated, so a worker that reads the lister after a handler enqueued a key
sees at least that state. They should only enqueue keys: an exception in a
handler is logged and does not stop the informer or the other handlers.
Handlers get the cached objects themselves, which the cache never mutates
(a change replaces the object); they are shared, so copy before changing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from api import Clock, RealClock

from ._lister import Lister
from ._reflector import Backoff, ListerWatcher, Reflector
from ._store import DeletedFinalStateUnknown, Indexer, IndexFunc, object_key, object_meta

T = TypeVar("T", bound=Message)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResourceEventHandler(Generic[T]):
    """One registration's callbacks (client-go's ResourceEventHandlerFuncs)."""

    on_add: Callable[[T], None] | None = None
    on_update: Callable[[T, T], None] | None = None
    on_delete: Callable[[T | DeletedFinalStateUnknown[T]], None] | None = None


class Informer(Generic[T]):
    """client-go's SharedIndexInformer: one list+watch, many handlers."""

    def __init__(self, client: ListerWatcher[T], *, resync: float = 0.0,
                 indexers: Mapping[str, IndexFunc] | None = None, label_selector: str = "",
                 field_selector: str = "", clock: Clock | None = None, backoff: Backoff | None = None,
                 watch_timeout: float = 300.0, rand: Callable[[], float] = random.random) -> None:
        self.kind = client.kind
        self.indexer: Indexer[T] = Indexer(indexers)
        self.resync = resync
        self._clock = clock or RealClock()
        self.reflector: Reflector[T] = Reflector(
            client, self, label_selector=label_selector, field_selector=field_selector, clock=self._clock,
            backoff=backoff, watch_timeout=watch_timeout, rand=rand)
        self._handlers: list[ResourceEventHandler[T]] = []
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ public

    def add_event_handler(self, on_add: Callable[[T], None] | None = None,
                          on_update: Callable[[T, T], None] | None = None,
                          on_delete: Callable[[T | DeletedFinalStateUnknown[T]], None] | None = None,
                          ) -> ResourceEventHandler[T]:
        """Register callbacks; a handler added late first gets an add for
        every object already cached, as in client-go."""
        handler = ResourceEventHandler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if handler.on_add is not None:
            for obj in self.indexer.list():
                self._call(handler.on_add, obj)
        return handler

    def remove_event_handler(self, handler: ResourceEventHandler[T]) -> None:
        self._handlers.remove(handler)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def lister(self) -> Lister[T]:
        return Lister(self.indexer, self.kind)

    @property
    def started(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        """Begin listing and watching in background tasks (idempotent)."""
        if self._tasks:
            return
        name = self.kind.group_resource
        self._tasks.append(asyncio.create_task(self.reflector.run(), name=f"reflector {name}"))
        if self.resync > 0:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=f"resync {name}"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def has_synced(self) -> bool:
        """True once the first list has been stored and announced."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def last_sync_resource_version(self) -> str:
        return self.reflector.last_sync_resource_version

    # ------------------------------------------------------------ the Reflector's store

    def replace(self, items: list[T], resource_version: str) -> None:
        old = {object_key(o): o for o in self.indexer.list()}
        self.indexer.replace(items, resource_version)
        for obj in items:
            key = object_key(obj)
            before = old.pop(key, None)
            if before is None:
                self._dispatch_add(obj)
            elif object_meta(before).resourceVersion != object_meta(obj).resourceVersion:
                self._dispatch_update(before, obj)
        for key, gone in old.items():
            self._dispatch_delete(DeletedFinalStateUnknown(key, gone))
        self._synced.set()

    def add(self, obj: T) -> None:
        before = self.indexer.get(obj)
        self.indexer.add(obj)
        if before is None:
            self._dispatch_add(obj)
        else:
            self._dispatch_update(before, obj)

    update = add

    def delete(self, obj: T) -> None:
        self.indexer.delete(obj)
        self._dispatch_delete(obj)

    # ------------------------------------------------------------ internals

    async def _resync_loop(self) -> None:
        while True:
            await self._clock.sleep(self.resync)
            if self.has_synced():
                for obj in self.indexer.list():
                    self._dispatch_update(obj, obj)

    def _dispatch_add(self, obj: T) -> None:
        for h in list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _dispatch_update(self, old: T, new: T) -> None:
        for h in list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _dispatch_delete(self, obj: T | DeletedFinalStateUnknown[T]) -> None:
        for h in list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("informer %s: an event handler failed", self.kind.group_resource)
