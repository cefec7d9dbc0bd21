"""The Reflector: keep a local store in step with the apiserver by list + watch.

It lists once (a consistent read from etcd, page by page), replaces the
store's content with the result, then watches from the list's
resourceVersion and applies each event. It remembers the last
resourceVersion it saw, including from BOOKMARK events (it always asks for
them), so a watch that ends resumes exactly where it stopped:

* the server ends the watch (its timeout, a restart): watch again at once
  from the last resourceVersion; a watch that ends within a second having
  delivered nothing counts as a failure, so a server that keeps hanging up
  cannot make the reflector spin;
* the watch fails with a retryable error (TooManyRequests when the server
  closed a watcher that fell behind, ServiceUnavailable when it is down or
  unreachable, Timeout, InternalError): wait with exponential backoff and
  jitter, then watch again from the same resourceVersion, without relisting;
* the server says Gone or Expired (that resourceVersion has been compacted
  out of etcd's history): relist, and let the store work out what changed
  while the reflector was not looking;
* anything else (the list failed, an unexpected error): back off, then
  relist.

Nothing here raises to the caller; `run()` goes on until it is cancelled.
The clock and the randomness are injectable, so tests step through backoff
without sleeping.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from google.protobuf.message import Message

from api import Clock, Kind, RealClock, StatusError

from ._clientset import ObjectList, WatchEvent

T = TypeVar("T", bound=Message)

log = logging.getLogger(__name__)

RELIST_REASONS = frozenset({"Gone", "Expired"})
RETRY_WATCH_REASONS = frozenset({"TooManyRequests", "ServiceUnavailable", "Timeout", "InternalError"})
_SHORT_WATCH = 1.0


class ListerWatcher(Protocol[T]):
    """What a Reflector needs of a ResourceClient (and what a test fake offers)."""

    kind: Kind

    async def list_all(self, *, label_selector: str = "", field_selector: str = "",
                       page: int = 500) -> ObjectList[T]: ...

    def watch(self, *, resource_version: str = "", label_selector: str = "", field_selector: str = "",
              bookmarks: bool = False, timeout_seconds: int = 0) -> AsyncIterator[WatchEvent[T]]: ...


class ReflectorStore(Protocol[T]):
    """Where a Reflector puts what it learns (an Informer, or a bare Indexer)."""

    def replace(self, items: list[T], resource_version: str) -> None: ...

    def add(self, obj: T) -> None: ...

    def update(self, obj: T) -> None: ...

    def delete(self, obj: T) -> None: ...


class Backoff:
    """Exponential backoff with jitter (client-go's wait.Backoff): each wait
    is the current step times 1..1+jitter; steps double up to `cap`, and
    start over after `reset_after` quiet seconds."""

    def __init__(self, initial: float = 0.8, cap: float = 30.0, *, factor: float = 2.0, jitter: float = 1.0,
                 reset_after: float = 120.0, clock: Clock | None = None,
                 rand: Callable[[], float] = random.random) -> None:
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self.reset_after = reset_after
        self._clock = clock or RealClock()
        self._rand = rand
        self._step = initial
        self._last: float | None = None

    def next(self) -> float:
        now = self._clock.monotonic()
        if self._last is not None and now - self._last > self.reset_after:
            self._step = self.initial
        delay = self._step * (1 + self.jitter * self._rand())
        self._step = min(self._step * self.factor, self.cap)
        self._last = now
        return delay

    def reset(self) -> None:
        self._step = self.initial
        self._last = None


class Reflector(Generic[T]):
    def __init__(self, client: ListerWatcher[T], store: ReflectorStore[T], *, label_selector: str = "",
                 field_selector: str = "", clock: Clock | None = None, backoff: Backoff | None = None,
                 watch_timeout: float = 300.0, page_size: int = 500,
                 rand: Callable[[], float] = random.random) -> None:
        self._client = client
        self._store = store
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._clock = clock or RealClock()
        self._backoff = backoff or Backoff(clock=self._clock, rand=rand)
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._rand = rand
        self._need_list = True
        self.name = client.kind.group_resource
        self.last_sync_resource_version = ""
        self.lists = 0  # successful lists so far: 1 + the relists

    async def run(self) -> None:
        """List and watch until cancelled."""
        while True:
            try:
                await self._list_and_watch()
            except StatusError as err:
                log.warning("reflector %s: %s: %s; retrying", self.name, err.reason, err.message)
                self._need_list = True
            except Exception:
                log.exception("reflector %s failed; relisting after a backoff", self.name)
                self._need_list = True
            await self._clock.sleep(self._backoff.next())

    async def _list_and_watch(self) -> None:
        if self._need_list:
            await self._list()
        while True:
            started = self._clock.monotonic()
            try:
                delivered = await self._watch()
            except StatusError as err:
                if err.reason in RELIST_REASONS:
                    log.info("reflector %s: watch from %s: %s; relisting", self.name,
                             self.last_sync_resource_version, err.message)
                    await self._list()
                    continue
                if err.reason not in RETRY_WATCH_REASONS:
                    raise
                log.info("reflector %s: watch failed (%s: %s); resuming from %s after a backoff", self.name,
                         err.reason, err.message, self.last_sync_resource_version)
                await self._clock.sleep(self._backoff.next())
                continue
            if delivered == 0 and self._clock.monotonic() - started < _SHORT_WATCH:
                log.info("reflector %s: very short watch; backing off", self.name)
                await self._clock.sleep(self._backoff.next())
            elif delivered:
                self._backoff.reset()

    async def _list(self) -> None:
        result = await self._client.list_all(label_selector=self._label_selector,
                                             field_selector=self._field_selector, page=self._page_size)
        self._store.replace(list(result.items), result.resource_version)
        self.last_sync_resource_version = result.resource_version
        self._need_list = False
        self.lists += 1

    async def _watch(self) -> int:
        """Apply one watch's events; the number of events it delivered."""
        timeout = int(self._watch_timeout * (1 + self._rand())) if self._watch_timeout else 0
        stream = self._client.watch(resource_version=self.last_sync_resource_version,
                                    label_selector=self._label_selector, field_selector=self._field_selector,
                                    bookmarks=True, timeout_seconds=timeout)
        delivered = 0
        try:
            async for event in stream:
                delivered += 1
                self._apply(event)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return delivered

    def _apply(self, event: WatchEvent[T]) -> None:
        if event.type == "ADDED":
            self._store.add(event.object)
        elif event.type == "MODIFIED":
            self._store.update(event.object)
        elif event.type == "DELETED":
            self._store.delete(event.object)
        elif event.type != "BOOKMARK":
            log.warning("reflector %s: ignoring a watch event of unknown type %r", self.name, event.type)
            return
        if event.resource_version:
            self.last_sync_resource_version = event.resource_version
