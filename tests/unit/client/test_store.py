"""client/_store.py: object keys, the Indexer's add/update/delete/replace,
the built-in namespace index and user index functions (pods by node)."""

from __future__ import annotations

from typing import Any

import pytest

from client import NAMESPACE_INDEX, DeletedFinalStateUnknown, Indexer, object_key, split_key
from proto import core_pb2


def pod(namespace: str, name: str, node: str = "", rv: str = "1") -> core_pb2.Pod:
    p = core_pb2.Pod()
    p.metadata.namespace, p.metadata.name, p.metadata.resourceVersion = namespace, name, rv
    p.spec.nodeName = node
    return p


def by_node(obj: Any) -> list[str]:
    return [obj.spec.nodeName] if obj.spec.nodeName else []


def test_keys() -> None:
    assert object_key(pod("ns", "web")) == "ns/web"
    node = core_pb2.Node()
    node.metadata.name = "node-1"
    assert object_key(node) == "node-1"
    assert object_key(DeletedFinalStateUnknown("ns/gone", pod("ns", "gone"))) == "ns/gone"
    assert split_key("ns/web") == ("ns", "web")
    assert split_key("node-1") == ("", "node-1")
    for bad in ("/web", "ns/", "a/b/c"):
        with pytest.raises(ValueError, match="unexpected key format"):
            split_key(bad)


def test_add_update_delete_keep_indexes_in_step() -> None:
    store: Indexer[core_pb2.Pod] = Indexer({"node": by_node})
    store.add(pod("a", "p1", "n1"))
    store.add(pod("a", "p2", "n1"))
    store.add(pod("b", "p3", "n2"))
    assert sorted(store.list_keys()) == ["a/p1", "a/p2", "b/p3"]
    assert [p.metadata.name for p in store.by_index("node", "n1")] == ["p1", "p2"]
    assert store.index_keys(NAMESPACE_INDEX, "b") == ["b/p3"]

    store.update(pod("a", "p2", "n2", rv="2"))  # rescheduled: moves between index values
    assert store.index_keys("node", "n1") == ["a/p1"]
    assert store.index_keys("node", "n2") == ["a/p2", "b/p3"]
    got = store.get_by_key("a/p2")
    assert got is not None and got.metadata.resourceVersion == "2"

    store.delete(pod("a", "p1"))
    assert "a/p1" not in store
    assert store.list_index_values("node") == ["n2"]  # n1 is empty and gone
    assert store.delete_key("a/missing") is None
    assert len(store) == 2


def test_objects_are_replaced_never_mutated() -> None:
    store: Indexer[core_pb2.Pod] = Indexer()
    first = pod("a", "p", rv="1")
    store.add(first)
    store.update(pod("a", "p", rv="2"))
    assert first.metadata.resourceVersion == "1"
    assert store.get(first) is not first


def test_replace_rebuilds_everything() -> None:
    store: Indexer[core_pb2.Pod] = Indexer({"node": by_node})
    store.add(pod("a", "old", "n1"))
    store.replace([pod("a", "new", "n2"), pod("b", "other", "n2")], "42")
    assert sorted(store.list_keys()) == ["a/new", "b/other"]
    assert store.index_keys("node", "n1") == []
    assert store.index_keys("node", "n2") == ["a/new", "b/other"]
    assert store.index_keys(NAMESPACE_INDEX, "a") == ["a/new"]


def test_index_by_example_and_late_indexers() -> None:
    store: Indexer[core_pb2.Pod] = Indexer()
    store.add(pod("a", "p1", "n1"))
    store.add(pod("b", "p2", "n1"))
    store.add(pod("b", "p3", ""))
    store.add_indexers({"node": by_node})  # existing objects get indexed
    assert [p.metadata.name for p in store.index("node", pod("x", "probe", "n1"))] == ["p1", "p2"]
    assert store.index("node", pod("x", "probe")) == []
    with pytest.raises(ValueError, match="already exists"):
        store.add_indexers({"node": by_node})
    with pytest.raises(KeyError, match="does not exist"):
        store.by_index("zone", "z1")
