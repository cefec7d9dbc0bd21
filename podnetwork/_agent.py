"""The agent's loop: a Node informer wakes one sync, which recomputes the
routes from the informer's cache and applies them.

Events only mark the table dirty; a single worker coalesces bursts (a
hundred nodes registering at once cost one or two syncs), and a periodic
resync repairs anything changed behind the agent's back. A failed apply is
retried on the next resync; problems are logged once per change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from client import Clientset, Informer
from proto import core_pb2

from ._routes import RouteTable, desired_routes

log = logging.getLogger(__name__)

SYNCS = Counter("podnetwork_syncs_total", "Route syncs", ["result"])
ROUTES = Gauge("podnetwork_routes", "Routes to other nodes' pod CIDRs held by this agent")
SYNC_SECONDS = Histogram("podnetwork_sync_duration_seconds", "How long one route sync took")


class RouteAgent:
    def __init__(self, clientset: Clientset, node_name: str, *, table: RouteTable | None = None,
                 resync: float = 30.0) -> None:
        self.node_name = node_name
        self.nodes: Informer[core_pb2.Node] = Informer(clientset.resource(core_pb2.Node))
        self.nodes.add_event_handler(self._dirty, lambda _old, _new: self._dirty(None), self._dirty)
        self.table = table or RouteTable()
        self.resync = resync
        self._wake = asyncio.Event()
        self._problems: list[str] = []
        self.synced = asyncio.Event()

    def _dirty(self, _obj: Any) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self.nodes.start()
        try:
            await self.nodes.wait_for_sync()
            while not stop.is_set():
                self._wake.clear()
                await self.sync()
                self.synced.set()
                waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=self.resync, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
        finally:
            await self.nodes.stop()
            await self.table.close()

    async def sync(self) -> None:
        started = time.monotonic()
        desired, problems = desired_routes(self.nodes.lister().list(), self.node_name)
        try:
            changed, removed, apply_problems = await self.table.apply(desired)
        except Exception:
            SYNCS.labels("error").inc()
            log.exception("syncing routes failed; retrying at the next resync")
            return
        problems += apply_problems
        if problems != self._problems:
            for problem in problems:
                log.warning("%s", problem)
            self._problems = problems
        if changed or removed:
            log.info("routes: %d added or changed, %d removed; %d in all", changed, removed, len(desired))
        ROUTES.set(len(desired))
        SYNCS.labels("success").inc()
        SYNC_SECONDS.observe(time.monotonic() - started)
