"""The watch cache: one etcd watch per resource, fanned out to every client.

Kubernetes' apiserver does not open an etcd watch per client watch; its
cacher keeps one per resource, holds the current objects and a window of
recent events in memory, and serves each client watch from there. This is
that, for one resource prefix:

* `start()` lists the prefix, then follows etcd's watch from the list's
  revision. The current objects (bytes plus the labels and fields selectors
  look at) stay in a dict; recent events stay in a bounded window.
* `watch(after)` registers a watcher that first receives the window's events
  newer than `after` (or, for `after=None`, an ADDED event per current
  object) and then every new event, filtered by its own predicate. Because
  registration and dispatch both run on the event loop without awaiting in
  between, nothing falls between the replay and the live stream.
* A watcher whose buffer fills is closed with a reason, instead of making
  the others wait; a watch from before the window raises `TooOld`, and the
  caller goes to etcd (or answers Gone once etcd has compacted it away).
* If etcd's watch breaks the cacher resumes from its revision; if that
  history was compacted it relists and closes its watchers, who resume from
  their last revision like any client whose watch ended.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._interface import Compacted, Store, StoreEvent, Unavailable

log = logging.getLogger(__name__)

Attrs = tuple[Mapping[str, str], Mapping[str, str]]  # labels, fields
AttrsFunc = Callable[[bytes], Attrs]


@dataclass(slots=True)
class CachedObject:
    key: str
    value: bytes
    revision: int
    labels: Mapping[str, str]
    fields: Mapping[str, str]


@dataclass(slots=True)
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED
    revision: int
    obj: CachedObject  # the new state; for DELETED the last state
    prev: CachedObject | None


Predicate = Callable[[CachedObject], bool]


class TooOld(Exception):
    """The revision is older than the cache's window of events."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"resource version {requested} is older than the watch cache ({oldest})")
        self.requested = requested
        self.oldest = oldest


class WatcherClosed(Exception):
    """Why the cache stopped serving a watcher (too slow, cache reset)."""


class CacheWatcher:
    """One client's view: a bounded queue of events that match its predicate."""

    def __init__(self, cacher: Cacher, predicate: Predicate, after: int, buffer: int) -> None:
        self._cacher = cacher
        self._predicate = predicate
        self.after = after
        # Unbounded, with the limit checked in deliver(): the close marker
        # must always find room, so no buffered event is dropped to make it.
        self._queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue()
        self.limit = buffer
        self.closed: WatcherClosed | None = None

    def deliver(self, event: CacheEvent) -> None:
        if self.closed is not None or event.revision <= self.after:
            return
        filtered = self._filter(event)
        if filtered is None:
            return
        if self._queue.qsize() >= self.limit:
            self.close(WatcherClosed(
                f"the client did not keep up ({self.limit} events buffered); "
                f"watch again from resourceVersion {event.revision - 1}"))
            return
        self._queue.put_nowait(filtered)

    def _filter(self, event: CacheEvent) -> CacheEvent | None:
        match = self._predicate
        if event.type == "ADDED":
            return event if match(event.obj) else None
        if event.type == "DELETED":
            return event if match(event.obj) else None
        was = event.prev is not None and match(event.prev)
        now = match(event.obj)
        if was and now:
            return event
        if now:
            return CacheEvent("ADDED", event.revision, event.obj, event.prev)
        if was:
            return CacheEvent("DELETED", event.revision, event.obj, event.prev)
        return None

    def close(self, reason: WatcherClosed) -> None:
        if self.closed is None:
            self.closed = reason
            self._cacher._forget(self)
            self._queue.put_nowait(None)  # after the buffered events, which the reader still gets

    def stop(self) -> None:
        """The client went away: release the watcher quietly."""
        self._cacher._forget(self)
        self.closed = self.closed or WatcherClosed("stopped")

    def pending(self) -> int:
        return self._queue.qsize()

    async def next(self, timeout: float | None = None) -> CacheEvent | None:
        """The next event; None on timeout. Raises WatcherClosed once closed
        and drained of the events before the close."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout) if timeout else await self._queue.get()
        except TimeoutError:
            return None
        if item is None:
            assert self.closed is not None
            raise self.closed
        return item


class Cacher:
    def __init__(self, store: Store, prefix: str, attrs: AttrsFunc, *, capacity: int = 10_000,
                 watcher_buffer: int = 10_000) -> None:
        self._store = store
        self.prefix = prefix
        self._attrs = attrs
        self._objects: dict[str, CachedObject] = {}
        self._window: collections.deque[CacheEvent] = collections.deque()
        self._capacity = capacity
        self._watcher_buffer = watcher_buffer
        self._watchers: set[CacheWatcher] = set()
        self._window_start = 0  # every event after this revision is in the window
        self.revision = 0
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._revision_waiters: list[tuple[int, asyncio.Future[None]]] = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._relist()
        self._task = asyncio.create_task(self._follow(), name=f"cacher {self.prefix}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for w in list(self._watchers):
            w.close(WatcherClosed("the apiserver is shutting down"))

    async def _relist(self) -> None:
        result = await self._store.range(self.prefix)
        objects = {}
        for kv in result.items:
            labels, fields = self._attrs(kv.value)
            objects[kv.key] = CachedObject(kv.key, kv.value, kv.mod_revision, labels, fields)
        self._objects = objects
        self._window.clear()
        self.revision = result.revision
        self._window_start = result.revision
        self.ready.set()

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                async for batch in self._store.watch(self.prefix, self.revision + 1):
                    self._apply(batch)
                    backoff = 0.1
            except Compacted:
                log.warning("watch cache %s: history compacted, relisting", self.prefix)
                self._reset("the watch cache was rebuilt after etcd compacted its history")
                await self._relist_with_retry()
                continue
            except Unavailable as err:
                log.warning("watch cache %s: %s; resuming from %d", self.prefix, err, self.revision)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _relist_with_retry(self) -> None:
        while True:
            try:
                await self._relist()
                return
            except Unavailable as err:
                log.warning("watch cache %s: relist failed: %s", self.prefix, err)
                await asyncio.sleep(1)

    def _reset(self, why: str) -> None:
        for w in list(self._watchers):
            w.close(WatcherClosed(why))

    # ------------------------------------------------------------ events

    def _apply(self, batch: list[StoreEvent]) -> None:
        for ev in batch:
            prev = self._objects.get(ev.key)
            if ev.type == "DELETE":
                if prev is None:
                    continue
                del self._objects[ev.key]
                gone = CachedObject(prev.key, prev.value, ev.mod_revision, prev.labels, prev.fields)
                event = CacheEvent("DELETED", ev.mod_revision, gone, prev)
            else:
                labels, fields = self._attrs(ev.value)
                obj = CachedObject(ev.key, ev.value, ev.mod_revision, labels, fields)
                self._objects[ev.key] = obj
                event = CacheEvent("MODIFIED" if prev is not None else "ADDED", ev.mod_revision, obj, prev)
            self.revision = ev.mod_revision
            self._window.append(event)
            if len(self._window) > self._capacity:
                self._window_start = self._window.popleft().revision
            for w in list(self._watchers):
                w.deliver(event)
        if self._revision_waiters:
            waiting = []
            for revision, fut in self._revision_waiters:
                if revision <= self.revision:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    waiting.append((revision, fut))
            self._revision_waiters = waiting

    async def wait_for_revision(self, revision: int, timeout: float) -> bool:
        """Wait until the cache has seen `revision` (for reads that must not
        be older than a write the caller made)."""
        if self.revision >= revision:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._revision_waiters.append((revision, fut))
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------ reads

    def get(self, key: str) -> CachedObject | None:
        return self._objects.get(key)

    def list(self, key_prefix: str, predicate: Predicate | None = None) -> list[CachedObject]:
        items = [o for k, o in self._objects.items() if k.startswith(key_prefix)]
        if predicate is not None:
            items = [o for o in items if predicate(o)]
        items.sort(key=lambda o: o.key)
        return items

    def __len__(self) -> int:
        return len(self._objects)

    # ------------------------------------------------------------ watchers

    def watch(self, after: int | None, predicate: Predicate) -> CacheWatcher:
        """A watcher for events after revision `after`; with `after=None`,
        first a synthetic ADDED for every current object that matches."""
        if after is not None and after < self._window_start:
            raise TooOld(after, self._window_start)
        buffer = self._watcher_buffer
        if after is None:
            current = [o for o in self._objects.values() if predicate(o)]
            buffer = max(buffer, len(current) + self._watcher_buffer)
            watcher = CacheWatcher(self, predicate, self.revision, buffer)
            for obj in sorted(current, key=lambda o: o.key):
                watcher._queue.put_nowait(CacheEvent("ADDED", obj.revision, obj, None))
        else:
            replay = [e for e in self._window if e.revision > after]
            buffer = max(buffer, len(replay) + self._watcher_buffer)
            watcher = CacheWatcher(self, predicate, after, buffer)
            for event in replay:
                watcher.deliver(event)
            watcher.after = max(after, self.revision)
        self._watchers.add(watcher)
        return watcher

    def _forget(self, watcher: CacheWatcher) -> None:
        self._watchers.discard(watcher)

    @property
    def window_start(self) -> int:
        return self._window_start
