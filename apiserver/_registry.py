"""Every kind's store, wired once: strategies, watch caches, admission and
allocators, plus the read-only lookups admission plugins use."""

from __future__ import annotations

import asyncio
from typing import Any

from api import SCHEME, Clock, StatusError, UnknownKindError, new_error

from ._admission import AdmissionChain, default_chain
from ._allocators import NodePortAllocator, ServiceIPAllocator
from ._metrics import STORED_OBJECTS
from ._store import ResourceStore
from .registry import Strategy, build_strategies
from .storage import Cacher, Store


class Registry:
    def __init__(self, storage: Store, clock: Clock, *, service_cidr: str = "10.96.0.0/12",
                 node_ports: tuple[int, int] = (30000, 32767), toleration_seconds: int = 300,
                 disabled_admission: tuple[str, ...] = (), watch_cache_size: int = 10_000,
                 watcher_buffer: int = 10_000) -> None:
        self.storage = storage
        self.ips = ServiceIPAllocator(storage, service_cidr)
        self.ports = NodePortAllocator(storage, *node_ports)
        self.admission: AdmissionChain = default_chain(self, toleration_seconds, disabled_admission)
        self.stores: dict[str, ResourceStore] = {}
        for group_resource, strategy in build_strategies(self.ips, self.ports).items():
            cacher = Cacher(storage, f"/registry/{strategy.kind.resource}/", _attrs_of(strategy),
                            capacity=watch_cache_size, watcher_buffer=watcher_buffer)
            self.stores[group_resource] = ResourceStore(strategy, storage, cacher, self.admission, clock)
            STORED_OBJECTS.labels(group_resource).set_function(cacher.__len__)

    def store_for(self, group: str, resource: str) -> ResourceStore:
        try:
            kind = SCHEME.by_resource(group, resource)
        except UnknownKindError as err:
            raise new_error("NotFound", str(err)) from None
        return self.stores[kind.group_resource]

    async def start(self) -> None:
        await asyncio.gather(*(s.cacher.start() for s in self.stores.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(s.cacher.stop() for s in self.stores.values()))

    # ------------------------------------------------------------ Lookup

    async def get(self, group: str, resource: str, namespace: str, name: str) -> Any | None:
        store = self.store_for(group, resource)
        cached = store.cacher.get(store.key(namespace, name))
        if cached is not None:
            return store.decode(cached.value)
        try:  # the cache may trail a write made a moment ago
            return await store.get_object(namespace, name)
        except StatusError as err:
            if err.reason == "NotFound":
                return None
            raise

    def list_cached(self, group: str, resource: str, namespace: str) -> list[Any]:
        store = self.store_for(group, resource)
        return [store.decode(o.value) for o in store.cacher.list(store.scope_prefix(namespace))]


def _attrs_of(strategy: Strategy) -> Any:
    message = strategy.kind.message

    def attrs(data: bytes) -> Any:
        return strategy.attrs(message.FromString(data))
    return attrs
