"""The sync loop every backend shares (kube-proxy's SyncRunner).

Changes arrive from the informers at any rate; the kernel is written at
most once per `min_sync_period` (a burst of a thousand endpoint updates
becomes one or two syncs), at once when the last sync is older than that,
and fully every `sync_period` whether or not anything changed (to repair
whatever someone else did to the tables). A sync takes a snapshot of the
tracker, hands it to the backend in a worker thread (iptables-restore and
nft block), and meanwhile the event loop keeps taking watch events.

Failure: if the backend raises, the changes go back to the tracker, the
next sync is a full one, and it runs after `min_sync_period` (never in a
tight loop); health turns NOT_SERVING until a sync succeeds again.

After a successful sync, UDP conntrack entries that point at endpoints
that went away are deleted, and so are those of UDP services that just
got their first endpoint (see ConntrackFlusher).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from api import Clock, RealClock

from . import _metrics as metrics
from ._runner import ConntrackFlusher
from ._tracker import ChangeTracker
from ._types import ProxySnapshot, ServicePortName, SyncResult

log = logging.getLogger(__name__)


class Proxier(Protocol):
    """A backend: turns a snapshot into kernel state. `changed` None asks
    for a full sync; otherwise only those service ports changed."""

    mode: str

    def sync(self, snapshot: ProxySnapshot, changed: set[ServicePortName] | None) -> SyncResult: ...

    def cleanup(self) -> None: ...


HealthCallback = Callable[[bool], Awaitable[None]]
Offload = Callable[..., Awaitable[Any]]


class SyncRunner:
    def __init__(self, proxier: Proxier, tracker: ChangeTracker, *, min_sync_period: float = 1.0,
                 sync_period: float = 3600.0, clock: Clock | None = None,
                 conntrack: ConntrackFlusher | None = None, before_sync: Callable[[], None] | None = None,
                 on_health: HealthCallback | None = None, offload: Offload = asyncio.to_thread) -> None:
        self.proxier = proxier
        # Rule writes block (iptables-restore, nft -f): off the event loop by
        # default; a test passes a runner that calls inline, so no thread races its fake clock.
        self.offload = offload
        self.tracker = tracker
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.clock = clock or RealClock()
        self.conntrack = conntrack
        self.before_sync = before_sync
        self.on_health = on_health
        self.needs_full = True
        self.last_sync = -1e18  # monotonic start of the last sync
        self.last_full = -1e18
        self.syncs = 0
        self.last_result: SyncResult | None = None
        self._kick = asyncio.Event()
        self._last = ProxySnapshot()
        self._reported_changes = (0, 0)

    def kick(self) -> None:
        """Something changed: sync soon (within min_sync_period)."""
        self._kick.set()

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                now = self.clock.monotonic()
                due_full = self.last_full + self.sync_period
                if not (self.needs_full or self.tracker.pending() or now >= due_full):
                    kicked = asyncio.create_task(self._kick.wait())
                    sleeper = asyncio.create_task(self.clock.sleep(max(0.0, due_full - now)))
                    await asyncio.wait({kicked, sleeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    kicked.cancel()
                    sleeper.cancel()
                    if stop.is_set():
                        return
                wait = self.last_sync + self.min_sync_period - self.clock.monotonic()
                if wait > 0:  # bounded frequency: batch what arrives meanwhile
                    sleeper = asyncio.create_task(self.clock.sleep(wait))
                    await asyncio.wait({sleeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    sleeper.cancel()
                    if stop.is_set():
                        return
                self._kick.clear()
                full = self.needs_full or self.clock.monotonic() >= self.last_full + self.sync_period
                await self.sync_once(full)
        finally:
            stopping.cancel()

    async def sync_once(self, full: bool) -> bool:
        snapshot, changed, triggers = self.tracker.snapshot()
        if self.before_sync is not None:
            self.before_sync()
        start = self.clock.monotonic()
        self.last_sync = start
        try:
            result = await self.offload(self.proxier.sync, snapshot, None if full else changed)
        except Exception as err:
            log.error("%s sync failed (next sync is a full one): %s", self.proxier.mode, err)
            self.tracker.requeue(changed, triggers)
            self.needs_full = True
            metrics.FAILURES.inc()
            if self.on_health is not None:
                await self.on_health(False)
            return False
        elapsed = self.clock.monotonic() - start
        previous, self._last = self._last, snapshot
        self.needs_full = False
        if full:
            self.last_full = start
        self.syncs += 1
        self.last_result = result
        self._observe(result, elapsed, triggers)
        log.debug("%s %s sync: %d service ports changed, %d lines in %.3fs", self.proxier.mode,
                  "full" if full else "partial", len(changed), result.written_lines, elapsed)
        if self.conntrack is not None:
            await self.offload(self._flush_conntrack, previous, snapshot, changed)
        if self.on_health is not None:
            await self.on_health(True)
        return True

    def _observe(self, result: SyncResult, elapsed: float, triggers: list[float]) -> None:
        metrics.SYNC_DURATION.observe(elapsed)
        (metrics.FULL_SYNC_DURATION if result.full else metrics.PARTIAL_SYNC_DURATION).observe(elapsed)
        metrics.LAST_SYNC.set(self.clock.now())
        for kind, count in result.rules.items():
            metrics.RULES.labels(kind).set(count)
        now = self.clock.now()
        for t in triggers:
            metrics.NETWORK_PROGRAMMING.observe(max(0.0, now - t))
        services, endpoints = self.tracker.service_changes, self.tracker.endpoint_changes
        metrics.SERVICE_CHANGES.inc(services - self._reported_changes[0])
        metrics.ENDPOINT_CHANGES.inc(endpoints - self._reported_changes[1])
        self._reported_changes = (services, endpoints)

    def _flush_conntrack(self, previous: ProxySnapshot, current: ProxySnapshot,
                         changed: set[ServicePortName]) -> None:
        assert self.conntrack is not None
        for name in changed:
            old_sp, new_sp = previous.services.get(name), current.services.get(name)
            sp = old_sp or new_sp
            if sp is None or sp.protocol != "UDP":
                continue
            old = previous.targets(name) if old_sp is not None else ()
            new = current.targets(name) if new_sp is not None else ()
            kept = {e.ip for e in new}
            for ep in old:
                if ep.ip not in kept:
                    self.conntrack.flush_endpoint(sp.cluster_ip, ep.ip)
                    if sp.node_port:
                        self.conntrack.flush_nodeport_endpoint(sp.node_port, ep.ip)
            if new_sp is not None and new and not old:
                self.conntrack.flush_service(new_sp.cluster_ip)
                if new_sp.node_port:
                    self.conntrack.flush_nodeport(new_sp.node_port)
