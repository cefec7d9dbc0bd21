"""The proxy process: informers for Services and EndpointSlices feeding the
change tracker, and the sync runner writing the kernel.

Event handlers do no work beyond updating the tracker (one object's worth)
and kicking the runner, as in kube-proxy's config handlers. The first sync
waits until both informers have listed, so a restarting proxy never
programs a half-known cluster (which would briefly reject services whose
slices had not arrived yet). If the apiserver goes away the informers
retry with backoff while the kernel keeps the last rules, so traffic
keeps flowing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from api import Clock
from client import Clientset, DeletedFinalStateUnknown, SharedInformerFactory, object_key, split_key
from proto import core_pb2, discovery_pb2

from ._syncer import Proxier, SyncRunner
from ._tracker import ChangeTracker

log = logging.getLogger(__name__)


class ProxyServer:
    def __init__(self, clientset: Clientset, proxier: Proxier, runner_options: dict[str, Any],
                 clock: Clock | None = None) -> None:
        self.tracker = ChangeTracker(clock)
        self.runner = SyncRunner(proxier, self.tracker, clock=clock, **runner_options)
        self.factory = SharedInformerFactory(clientset)
        services = self.factory.informer_for(core_pb2.Service)
        services.add_event_handler(on_add=self._service, on_update=lambda _o, n: self._service(n),
                                   on_delete=self._service_deleted)
        slices = self.factory.informer_for(discovery_pb2.EndpointSlice)
        slices.add_event_handler(on_add=self._slice, on_update=lambda _o, n: self._slice(n),
                                 on_delete=self._slice_deleted)

    def _service(self, svc: core_pb2.Service) -> None:
        self.tracker.service_changed(object_key(svc), svc)
        self._kick()

    def _service_deleted(self, obj: core_pb2.Service | DeletedFinalStateUnknown[core_pb2.Service]) -> None:
        self.tracker.service_changed(object_key(obj), None)
        self._kick()

    def _slice(self, es: discovery_pb2.EndpointSlice) -> None:
        self.tracker.slice_changed(es.metadata.namespace, es.metadata.name, es)
        self._kick()

    def _slice_deleted(self, obj: discovery_pb2.EndpointSlice | DeletedFinalStateUnknown[discovery_pb2.EndpointSlice],
                       ) -> None:
        namespace, name = split_key(object_key(obj))
        self.tracker.slice_changed(namespace, name, None)
        self._kick()

    def _kick(self) -> None:
        if self.tracker.pending():
            self.runner.kick()

    async def run(self, stop: asyncio.Event, cache_sync_timeout: float = 60.0) -> None:
        self.factory.start()
        synced = await self.factory.wait_for_cache_sync(cache_sync_timeout)
        if not all(synced.values()):
            log.warning("Services and EndpointSlices not listed after %.0fs; syncing with what is known",
                        cache_sync_timeout)
        try:
            await self.runner.run(stop)
        finally:
            await self.factory.shutdown()
