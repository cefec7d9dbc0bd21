"""The informer's local cache: an indexed store of objects keyed `namespace/name`.

An Indexer holds the latest known state of every object a Reflector has
listed and watched, keyed `namespace/name` (or `name` for a cluster-scoped
kind), plus any number of named indexes: an index function maps an object to
the values it is filed under (the built-in `namespace` index files a Pod
under its namespace; a kubelet adds one filing Pods under `spec.nodeName`),
so "all pods on node-1" is a dictionary lookup instead of a scan.

Objects are never mutated in place: every add or update stores the message
it was given and drops the old one, so an object a handler or lister once
returned never changes under it. The flip side is that those objects are
shared with the cache: code that wants to change one must copy it first
(`new = type(obj)(); new.CopyFrom(obj)`), as every controller does.

There is no locking: informers, listers and handlers all run on one asyncio
event loop, and no method here awaits.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from proto import meta_pb2

T = TypeVar("T", bound=Message)

IndexFunc = Callable[[Any], list[str]]
NAMESPACE_INDEX = "namespace"


def object_meta(obj: Message) -> meta_pb2.ObjectMeta:
    """The ObjectMeta of any kind's message."""
    return obj.metadata  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True)
class DeletedFinalStateUnknown(Generic[T]):
    """What a delete handler gets for an object that vanished while the watch
    was down: the deletion was only noticed by a relist, so `obj` is the last
    state the cache saw, which may be stale (client-go's tombstone)."""

    key: str
    obj: T


def object_key(obj: Any) -> str:
    """`namespace/name`, or `name` for a cluster-scoped object (client-go's
    MetaNamespaceKeyFunc); a tombstone's key is the key it was filed under."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    meta = object_meta(obj)
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name) from a key; namespace is "" for cluster-scoped."""
    namespace, sep, name = key.partition("/")
    if not sep:
        return "", key
    if not namespace or not name or "/" in name:
        raise ValueError(f"unexpected key format: {key!r}")
    return namespace, name


def namespace_index(obj: Any) -> list[str]:
    return [object_meta(obj).namespace]


class Indexer(Generic[T]):
    """A keyed store with secondary indexes (client-go's cache.Indexer)."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None,
                 key_func: Callable[[Any], str] = object_key) -> None:
        self._key = key_func
        self._items: dict[str, T] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        if indexers:
            self.add_indexers(indexers)

    # ------------------------------------------------------------ writes

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named index functions; existing objects are indexed at once."""
        for name, func in indexers.items():
            if name in self._indexers:
                raise ValueError(f"indexer {name!r} already exists")
            self._indexers[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._file(name, key, obj)

    def add(self, obj: T) -> None:
        key = self._key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, old, obj)

    update = add

    def delete(self, obj: T) -> None:
        self.delete_key(self._key(obj))

    def delete_key(self, key: str) -> T | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._reindex(key, old, None)
        return old

    def replace(self, items: Iterable[T], resource_version: str = "") -> None:
        """Swap the whole content for `items` (what a relist does)."""
        self._items = {self._key(obj): obj for obj in items}
        self._indices = {name: {} for name in self._indexers}
        for key, obj in self._items.items():
            for name in self._indexers:
                self._file(name, key, obj)

    # ------------------------------------------------------------ reads

    def get(self, obj: T) -> T | None:
        return self._items.get(self._key(obj))

    def get_by_key(self, key: str) -> T | None:
        return self._items.get(key)

    def list(self) -> list[T]:
        return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        return sorted(self._index(index_name).get(value, ()))

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        """The objects filed under `value` in the named index."""
        return [self._items[k] for k in self.index_keys(index_name, value)]

    def index(self, index_name: str, obj: T) -> builtins.list[T]:
        """The objects sharing any of `obj`'s values in the named index."""
        index = self._index(index_name)
        keys: set[str] = set()
        for value in self._indexers[index_name](obj):
            keys |= index.get(value, set())
        return [self._items[k] for k in sorted(keys)]

    def list_index_values(self, index_name: str) -> builtins.list[str]:
        return sorted(self._index(index_name))

    # ------------------------------------------------------------ internals

    def _index(self, name: str) -> dict[str, set[str]]:
        try:
            return self._indices[name]
        except KeyError:
            raise KeyError(f"index {name!r} does not exist") from None

    def _file(self, name: str, key: str, obj: T) -> None:
        for value in self._indexers[name](obj):
            self._indices[name].setdefault(value, set()).add(key)

    def _reindex(self, key: str, old: T | None, new: T | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            if old is not None:
                for value in func(old):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            if new is not None:
                self._file(name, key, new)
