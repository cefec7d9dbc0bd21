"""Putting a scheduler together from a configuration and a clientset.

One cache and one queue serve every profile; each profile gets its own
Framework (its plugins, built once) and its own event recorder, so events
name the profile's schedulerName as their source, as in Kubernetes.

The informers start at once, leader or not, so a standby has a warm cache
and takes over without relisting; only the leader runs the scheduling
loop. The pod informer leaves out finished pods (a field selector on
status.phase), which take no room.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import REGISTRY as METRICS

from api import Clock, RealClock
from client import Clientset, EventBroadcaster, EventRecorder, Informer, SharedInformerFactory
from proto import core_pb2

from . import _metrics as metrics
from ._cache import Cache, Snapshot
from ._config import SchedulerConfiguration
from ._handlers import EventHandlers
from ._queue import Nominator, SchedulingQueue
from ._scheduler import Scheduler
from .framework import PERSISTENT_VOLUME, PERSISTENT_VOLUME_CLAIM, Framework, Registry
from .plugins import REGISTRY

log = logging.getLogger(__name__)

POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"


class SchedulerApp:
    def __init__(self, clientset: Clientset, config: SchedulerConfiguration, *, registry: Registry = REGISTRY,
                 clock: Clock | None = None, max_binds_in_flight: int = 64, host: str = "",
                 watch_clientset: Clientset | None = None) -> None:
        self.clientset = clientset
        self.watch_clientset = watch_clientset or clientset
        self.config = config
        clock = clock or RealClock()
        self.cache = Cache()
        self.snapshot = Snapshot(self.cache)
        self.factory = SharedInformerFactory(self.watch_clientset)
        nominator = Nominator()
        self.broadcasters: list[EventBroadcaster] = []
        recorders: dict[str, EventRecorder] = {}
        self.profiles: dict[str, Framework] = {}
        for profile in config.profiles:
            broadcaster = EventBroadcaster(clientset, profile.scheduler_name, host=host)
            self.broadcasters.append(broadcaster)
            recorders[profile.scheduler_name] = broadcaster.new_recorder()
            self.profiles[profile.scheduler_name] = Framework(
                profile, registry, snapshot=self.snapshot, clientset=clientset, informer_factory=self.factory,
                recorder=recorders[profile.scheduler_name], nominator=nominator)
        self.queue = SchedulingQueue(self.profiles, clock=clock, initial_backoff=config.pod_initial_backoff,
                                     max_backoff=config.pod_max_backoff, nominator=nominator)
        self.scheduler = Scheduler(self.cache, self.queue, self.profiles, self.snapshot, clientset=clientset,
                                   recorders=recorders, clock=clock, max_binds_in_flight=max_binds_in_flight,
                                   percentage_of_nodes_to_score=config.percentage_of_nodes_to_score)
        self.handlers = EventHandlers(self.cache, self.queue, self.profiles)
        self.scheduler.informer_activity = self.handlers.activity
        self._wire()
        try:
            self._collector: metrics.StateCollector | None = metrics.register_state(self.queue.pending,
                                                                                    self.cache.sizes)
        except ValueError:  # already registered by another app in this process (tests)
            self._collector = None

    def _wire(self) -> None:
        h = self.handlers
        self.pods: Informer[core_pb2.Pod] = Informer(self.watch_clientset.resource(core_pb2.Pod),
                                                      field_selector=POD_FIELD_SELECTOR)
        self.pods.add_event_handler(h.on_pod_add, h.on_pod_update, h.on_pod_delete)
        nodes = self.factory.informer_for(core_pb2.Node)
        nodes.add_event_handler(h.on_node_add, h.on_node_update, h.on_node_delete)
        namespaces = self.factory.informer_for(core_pb2.Namespace)
        namespaces.add_event_handler(h.on_namespace, h.on_namespace, h.on_namespace_delete)
        wanted = {e.resource for fwk in self.profiles.values() for events in fwk.events_to_register().values()
                  for e in events}
        if PERSISTENT_VOLUME_CLAIM in wanted:
            self.factory.informer_for(core_pb2.PersistentVolumeClaim).add_event_handler(h.on_claim, h.on_claim)
        if PERSISTENT_VOLUME in wanted:
            self.factory.informer_for(core_pb2.PersistentVolume).add_event_handler(h.on_volume, h.on_volume)

    def start(self) -> None:
        self.factory.start()
        self.pods.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        synced = await self.factory.wait_for_cache_sync(timeout)
        return all(synced.values()) and await self.pods.wait_for_sync(timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule until `stop` is set (the leader's work)."""
        await self.scheduler.run(stop)

    async def shutdown(self) -> None:
        self.queue.close()
        await self.scheduler.close()
        await asyncio.gather(*(b.shutdown(2.0) for b in self.broadcasters))
        await self.pods.stop()
        await self.factory.shutdown()
        if self._collector is not None:
            METRICS.unregister(self._collector)
            self._collector = None
