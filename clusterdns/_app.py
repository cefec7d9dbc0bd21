"""Keeping the index in step with the cluster: informers in, records out.

Three informers (Services, EndpointSlices, Pods) share the component's
event loop with the DNS server. Their handlers map each event to the one
owner it touches - a Service's `namespace/name`, also for a slice through
its `kubernetes.io/service-name` label, or a Pod's - and call
`sync_service(key)` / `sync_pod(key)` at once. Those read the informers'
caches (never the API), rebuild that owner's records and hand them to the
index, which swaps only what changed.

Unlike a controller this needs no work queue: a sync reads memory, calls
nothing that can fail or block, and finishes before the next event, so
there is nothing to retry or rate-limit, and a query arriving right after
an event already sees it. A tombstone (an object deleted while the watch
was down) syncs like any delete: the key's object is gone from the cache,
so its records go. While the apiserver is unreachable the informers retry
with backoff and the server keeps answering from the last state it had,
which is what a DNS server that lost its source of truth should do.

Pods are watched only for `<a-b-c-d>.<ns>.pod.<zone>` (pass
`pod_records=False` to skip the watch on a large cluster); finished pods
are left out by a field selector, as the scheduler does.
"""

from __future__ import annotations

import logging
from typing import Any

import dns.name

from client import Clientset, DeletedFinalStateUnknown, Informer, SharedInformerFactory, object_key, object_meta
from proto import core_pb2, discovery_pb2

from ._index import RecordIndex
from ._records import SERVICE_NAME_LABEL, pod_records, service_records
from ._resolver import zone_records

log = logging.getLogger(__name__)

SERVICE_INDEX = "service"
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
ZONE_OWNER = "zone"


def slice_service_key(es: Any) -> list[str]:
    """The `namespace/name` of the Service a slice belongs to (an index
    function: a slice without the label belongs to none)."""
    service = object_meta(es).labels.get(SERVICE_NAME_LABEL)
    return [f"{object_meta(es).namespace}/{service}"] if service else []


class ClusterDNS:
    """The index, fed by informers over `clientset`."""

    def __init__(self, clientset: Clientset, zone: dns.name.Name, *, index: RecordIndex | None = None,
                 pod_records: bool = True) -> None:
        self.zone = zone
        self.index = index if index is not None else RecordIndex()
        self.index.set(ZONE_OWNER, zone_records(zone))
        self.factory = SharedInformerFactory(clientset)
        self.services: Informer[core_pb2.Service] = self.factory.informer_for(core_pb2.Service)
        self.slices: Informer[discovery_pb2.EndpointSlice] = self.factory.informer_for(discovery_pb2.EndpointSlice)
        self.slices.add_indexers({SERVICE_INDEX: slice_service_key})
        self.services.add_event_handler(self._on_service, lambda _old, new: self._on_service(new),
                                        self._on_service)
        self.slices.add_event_handler(self._on_slice, self._on_slice_update, self._on_slice)
        self.pods: Informer[core_pb2.Pod] | None = None
        if pod_records:
            self.pods = Informer(clientset.resource(core_pb2.Pod), field_selector=POD_FIELD_SELECTOR)
            self.pods.add_event_handler(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod)

    def start(self) -> None:
        self.factory.start()
        if self.pods is not None:
            self.pods.start()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        synced = await self.factory.wait_for_cache_sync(timeout)
        return all(synced.values()) and (self.pods is None or await self.pods.wait_for_sync(timeout))

    async def shutdown(self) -> None:
        await self.factory.shutdown()
        if self.pods is not None:
            await self.pods.stop()

    # ------------------------------------------------------------ syncs

    def sync_service(self, key: str) -> None:
        """Rebuild the records of the Service `namespace/name` from the caches."""
        svc = self.services.indexer.get_by_key(key)
        owner = f"service/{key}"
        if svc is None:
            self.index.remove(owner)
            return
        slices = self.slices.indexer.by_index(SERVICE_INDEX, key)
        if self.index.set(owner, service_records(svc, slices, self.zone)):
            log.debug("records of service %s rebuilt", key)

    def sync_pod(self, key: str) -> None:
        assert self.pods is not None
        pod = self.pods.indexer.get_by_key(key)
        owner = f"pod/{key}"
        if pod is None:
            self.index.remove(owner)
        else:
            self.index.set(owner, pod_records(pod, self.zone))

    # ------------------------------------------------------------ handlers

    def _on_service(self, obj: core_pb2.Service | DeletedFinalStateUnknown[core_pb2.Service]) -> None:
        self.sync_service(object_key(obj))

    def _on_slice(self, obj: discovery_pb2.EndpointSlice | DeletedFinalStateUnknown[Any]) -> None:
        es = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        for key in slice_service_key(es):
            self.sync_service(key)

    def _on_slice_update(self, old: discovery_pb2.EndpointSlice, new: discovery_pb2.EndpointSlice) -> None:
        for key in set(slice_service_key(old)) | set(slice_service_key(new)):
            self.sync_service(key)

    def _on_pod(self, obj: core_pb2.Pod | DeletedFinalStateUnknown[core_pb2.Pod]) -> None:
        self.sync_pod(object_key(obj))
