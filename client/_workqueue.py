"""The work queue between informers and a controller's workers (client-go's
workqueue), with de-duplication, delays and rate limiting.

A controller's handlers `add(key)`; its workers loop on `key = await
queue.get()`, call `sync(key)`, then `done(key)`, and on failure
`add_rate_limited(key)` (on success `forget(key)`). The queue guarantees:

* a key added many times before a worker takes it is processed once;
* a key is never held by two workers at once: one added while it is being
  processed waits and is queued again when `done` is called;
* keys come out in the order they were (first) added.

`add_after` parks a key for a while (one timer task per waiting key; adding
it again sooner moves it up, later is ignored). After `shut_down()` new adds
are dropped, waiting keys are abandoned, workers drain what is queued and
then `get()` raises QueueShutDown. A named queue reports client-go's
workqueue metrics (depth, adds, retries) to Prometheus.

Everything waits on an injectable Clock, so a 1000 s backoff is tested by
stepping a FakeClock.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge

from api import Clock, RealClock

from ._ratelimiter import RateLimiter, default_controller_rate_limiter

K = TypeVar("K", bound=Hashable)

_DEPTH = Gauge("workqueue_depth", "Current depth of the work queue", ["name"])
_ADDS = Counter("workqueue_adds_total", "Keys added to the work queue", ["name"])
_RETRIES = Counter("workqueue_retries_total", "Keys re-added with a rate limit", ["name"])


class QueueShutDown(Exception):
    """`get()` on a queue that has been shut down and drained."""


class WorkQueue(Generic[K]):
    def __init__(self, name: str = "") -> None:
        self.name = name
        self._queue: collections.deque[K] = collections.deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._shutting_down = False
        self._drained = asyncio.Event()

    def add(self, item: K) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if self.name:
            _ADDS.labels(self.name).inc()
        if item in self._processing:
            return  # requeued by done()
        self._push(item)

    async def get(self) -> K:
        """The next key, waiting for one; QueueShutDown once shut down and empty."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on a wake-up this worker will not use
                raise
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        self._report_depth()
        return item

    def done(self, item: K) -> None:
        """The worker has finished with `item`; requeue it if it was added meanwhile."""
        self._processing.discard(item)
        if item in self._dirty:
            self._push(item)
        if self._shutting_down and not self._processing:
            self._drained.set()

    def len(self) -> int:
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shut_down(self) -> None:
        self._shutting_down = True
        if not self._processing:
            self._drained.set()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every key handed out has been `done`."""
        self.shut_down()
        await self._drained.wait()

    def _push(self, item: K) -> None:
        self._queue.append(item)
        self._report_depth()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _report_depth(self) -> None:
        if self.name:
            _DEPTH.labels(self.name).set(len(self._queue))


class DelayingQueue(WorkQueue[K]):
    def __init__(self, name: str = "", *, clock: Clock | None = None) -> None:
        super().__init__(name)
        self.clock: Clock = clock or RealClock()
        self._waiting: dict[K, tuple[float, asyncio.Task[None]]] = {}

    def add_after(self, item: K, seconds: float) -> None:
        """Add `item` once `seconds` have passed (at once if <= 0)."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(item)
            return
        ready = self.clock.monotonic() + seconds
        parked = self._waiting.get(item)
        if parked is not None:
            if parked[0] <= ready:
                return
            parked[1].cancel()
        task = asyncio.get_running_loop().create_task(self._add_when_ready(item, ready))
        self._waiting[item] = (ready, task)

    def waiting(self) -> int:
        """Keys parked by add_after that are not queued yet."""
        return len(self._waiting)

    def shut_down(self) -> None:
        super().shut_down()
        for _, task in self._waiting.values():
            task.cancel()
        self._waiting.clear()

    async def _add_when_ready(self, item: K, ready: float) -> None:
        await self.clock.sleep(ready - self.clock.monotonic())
        self._waiting.pop(item, None)
        self.add(item)


class RateLimitingQueue(DelayingQueue[K]):
    """The queue every controller uses (client-go's RateLimitingInterface)."""

    def __init__(self, rate_limiter: RateLimiter | None = None, *, name: str = "",
                 clock: Clock | None = None) -> None:
        super().__init__(name, clock=clock)
        self.rate_limiter: RateLimiter = rate_limiter or default_controller_rate_limiter(self.clock)

    def add_rate_limited(self, item: K) -> None:
        """Add `item` after the delay its rate limiter decides (a retry)."""
        if self.name:
            _RETRIES.labels(self.name).inc()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: K) -> None:
        """`item` succeeded: reset its failure count."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return self.rate_limiter.num_requeues(item)
