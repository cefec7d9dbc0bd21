"""Pod workers: one task per pod, running that pod's syncs one at a time.

Anything that concerns a pod - its object changed, the runtime reported a
container change (the PLEG relist), a probe result flipped, a backoff ran
out - only wakes the pod's worker; the worker then runs one full sync of
the pod against fresh runtime state. Wakes that arrive during a sync
collapse into one more sync after it, so a busy pod is never synced twice
at once and never misses a change.

`sync(uid)` returns the seconds until the worker should run again anyway
(the periodic resync or an expiring backoff), or None when the pod is
finished with and the worker can end. A sync that raises is logged and
retried with a per-pod backoff (1 s doubling to 30 s), so a runtime that
is down costs one quiet retry per pod instead of a busy loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from api import Clock

log = logging.getLogger(__name__)

Sync = Callable[[str], Awaitable[float | None]]


class _Worker:
    __slots__ = ("failures", "task", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.failures = 0


class PodWorkers:
    def __init__(self, sync: Sync, clock: Clock, *, name: str = "") -> None:
        self._sync = sync
        self.clock = clock
        self.name = name
        self._workers: dict[str, _Worker] = {}
        self._closed = False

    def __contains__(self, uid: str) -> bool:
        return uid in self._workers

    def __len__(self) -> int:
        return len(self._workers)

    def wake(self, uid: str) -> None:
        """Sync pod `uid` soon (starting its worker if it has none)."""
        if self._closed:
            return
        worker = self._workers.get(uid)
        if worker is None:
            worker = self._workers[uid] = _Worker()
            worker.wake.set()
            worker.task = asyncio.create_task(self._run(uid, worker), name=f"pod worker {self.name} {uid}")
        else:
            worker.wake.set()

    async def stop(self) -> None:
        self._closed = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        self._workers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, uid: str, worker: _Worker) -> None:
        try:
            while True:
                worker.wake.clear()
                try:
                    delay = await self._sync(uid)
                    worker.failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    worker.failures += 1
                    delay = min(30.0, 2.0 ** (worker.failures - 1))
                    log.warning("syncing pod %s failed (retrying in %.0fs): %s", uid, delay, err,
                                exc_info=log.isEnabledFor(logging.DEBUG))
                if delay is None:
                    if not worker.wake.is_set():
                        return
                    continue
                if not worker.wake.is_set():
                    await self._wait(worker.wake, delay)
        finally:
            if self._workers.get(uid) is worker:
                del self._workers[uid]

    async def _wait(self, event: asyncio.Event, delay: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
