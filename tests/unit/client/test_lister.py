"""client/_lister.py: listing by namespace and label selector, and get
answering NotFound the way the API does."""

from __future__ import annotations

import pytest

from api import SCHEME, StatusError, parse_selector
from client import Indexer, Lister
from proto import core_pb2


def cm(namespace: str, name: str, **labels: str) -> core_pb2.ConfigMap:
    obj = core_pb2.ConfigMap()
    obj.metadata.namespace, obj.metadata.name = namespace, name
    obj.metadata.labels.update(labels)
    return obj


@pytest.fixture
def lister() -> Lister[core_pb2.ConfigMap]:
    store: Indexer[core_pb2.ConfigMap] = Indexer()
    for obj in (cm("b", "z", app="web"), cm("a", "y", app="db"), cm("a", "x", app="web", tier="front")):
        store.add(obj)
    return Lister(store, SCHEME.for_message(core_pb2.ConfigMap))


def names(objs: list[core_pb2.ConfigMap]) -> list[str]:
    return [f"{o.metadata.namespace}/{o.metadata.name}" for o in objs]


def test_list_all_namespaces_in_key_order(lister: Lister[core_pb2.ConfigMap]) -> None:
    assert names(lister.list()) == ["a/x", "a/y", "b/z"]


def test_list_one_namespace_with_a_selector(lister: Lister[core_pb2.ConfigMap]) -> None:
    assert names(lister.list("a")) == ["a/x", "a/y"]
    assert names(lister.list("a", parse_selector("app=web"))) == ["a/x"]
    assert names(lister.list(None, parse_selector("app=web,tier!=front"))) == ["b/z"]
    assert lister.list("c") == []


def test_get_and_not_found(lister: Lister[core_pb2.ConfigMap]) -> None:
    assert lister.get("a", "y").metadata.labels["app"] == "db"
    with pytest.raises(StatusError) as err:
        lister.get("b", "y")
    assert err.value.reason == "NotFound"
    assert str(err.value) == 'configmaps "y" not found'


def test_cluster_scoped_get_ignores_the_namespace() -> None:
    store: Indexer[core_pb2.Node] = Indexer()
    node = core_pb2.Node()
    node.metadata.name = "node-1"
    store.add(node)
    nodes = Lister(store, SCHEME.for_message(core_pb2.Node))
    assert nodes.get("", "node-1") is node
    assert nodes.get("whatever", "node-1") is node
    assert len(nodes.list("whatever")) == 1
