"""Running the enabled controllers while this replica leads.

Once the Lease is ours: build one shared informer factory and event
recorder, construct every enabled controller (each registers the informers
and handlers it needs), start the informers, wait for their caches, and run
each controller's workers. When leadership ends, everything stops before
anyone else can take over (the elector's fencing), and the process exits
non-zero so a supervisor restarts it as a standby, as
kube-controller-manager does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from api import Clock
from client import Clientset, EventBroadcaster, SharedInformerFactory

from ._controller import Controller, ControllerContext
from ._registry import load

log = logging.getLogger(__name__)


def workers_flag(name: str) -> str:
    return f"concurrent_{name.replace('-', '_')}_syncs"


async def run_controllers(clientset: Clientset, options: argparse.Namespace, names: list[str], clock: Clock,
                          stopped: asyncio.Event) -> None:
    informers = SharedInformerFactory(clientset, resync=options.resync_period, clock=clock)
    broadcaster = EventBroadcaster(clientset, "controller-manager", clock=clock)
    ctx = ControllerContext(clientset, informers, broadcaster.new_recorder(), clock, options)
    controllers: list[Controller] = [load(name)(ctx) for name in names]
    informers.start()
    synced = await informers.wait_for_cache_sync(options.cache_sync_timeout)
    missing = [kind.DESCRIPTOR.name for kind, ok in synced.items() if not ok]
    if missing:
        log.warning("caches not synced after %ss: %s; starting anyway, they keep trying",
                    options.cache_sync_timeout, ", ".join(missing))
    tasks = [asyncio.create_task(c.run(getattr(options, workers_flag(c.name))), name=f"controller {c.name}")
             for c in controllers]
    log.info("started controllers: %s", ", ".join(names))
    try:
        await stopped.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await informers.shutdown()
        await broadcaster.shutdown()
        log.info("controllers stopped")
