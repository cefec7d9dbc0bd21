"""Storage for the apiserver: a small Store interface, its etcd
implementation, and the watch cache that fans one etcd watch out to every
client."""

from ._cacher import CachedObject, CacheEvent, Cacher, CacheWatcher, TooOld, WatcherClosed
from ._etcd import ETCD_LATENCY, EtcdStore
from ._interface import (
    Compacted,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionMismatch,
    Store,
    StoreError,
    StoreEvent,
    Unavailable,
)

__all__ = [
    "ETCD_LATENCY", "CacheEvent", "CacheWatcher", "CachedObject", "Cacher", "Compacted", "EtcdStore", "KeyExists",
    "KeyNotFound", "KeyValue", "ListResult", "RevisionMismatch", "Store", "StoreError", "StoreEvent", "TooOld",
    "Unavailable", "WatcherClosed",
]
