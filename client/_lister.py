"""Listers: the read side of an informer's cache, shaped like the API.

Controllers read through a Lister instead of calling the apiserver: it
answers from memory, and it answers like the API would, so a `get` of an
object the cache does not hold raises the same NotFound StatusError a real
Get would, and "not found means done" reads the same either way.

The objects returned are the cache's own and are shared with every other
reader: copy before changing one.
"""

from __future__ import annotations

import builtins
from typing import Generic, TypeVar

from google.protobuf.message import Message

from api import Kind, Selector, not_found

from ._store import NAMESPACE_INDEX, Indexer, object_key, object_meta

T = TypeVar("T", bound=Message)


class Lister(Generic[T]):
    def __init__(self, indexer: Indexer[T], kind: Kind) -> None:
        self.indexer = indexer
        self.kind = kind

    def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[T]:
        """Objects in `namespace` (None: every namespace) whose labels match
        `selector` (None: all), ordered by key."""
        if namespace is not None and self.kind.namespaced:
            objs = self.indexer.by_index(NAMESPACE_INDEX, namespace)
        else:
            objs = sorted(self.indexer.list(), key=object_key)
        if selector is None or selector.empty():
            return objs
        return [o for o in objs if selector.matches(object_meta(o).labels)]

    def get(self, namespace: str, name: str) -> T:
        """The cached object, or NotFound; `namespace` is ignored for a
        cluster-scoped kind."""
        key = f"{namespace}/{name}" if self.kind.namespaced and namespace else name
        obj = self.indexer.get_by_key(key)
        if obj is None:
            raise not_found(self.kind.resource, self.kind.group, name)
        return obj

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        """Objects filed under `value` by a named indexer (e.g. pods by node)."""
        return self.indexer.by_index(index_name, value)
