"""InterPodAffinity: required podAffinity and podAntiAffinity per
topology domain (hostname and zone), the symmetry of existing pods'
anti-affinity, the first pod of a self-affine group, namespaces and
namespaceSelector, and the preferred terms' score."""

from __future__ import annotations

from typing import Any

import pytest

from proto import core_pb2
from scheduler.framework import Code

from .support import Cluster, node, pod

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def term(labels: dict[str, str], key: str = HOST, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key, **extra}


def affinity(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(["InterPodAffinity"])
    for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")):
        c.add(node(name, labels={ZONE: zone}))
    c.add(pod("db", labels={"app": "db"}, node_name="a1"),
          pod("cache", labels={"app": "cache"}, node_name="b1"))
    return c


def test_affinity_by_host_and_by_zone(cluster: Cluster) -> None:
    assert cluster.feasible(pod("p", affinity=affinity("podAffinity", term({"app": "db"})))) == ["a1"]
    assert set(cluster.feasible(pod("p", affinity=affinity("podAffinity", term({"app": "db"}, ZONE))))) == \
        {"a1", "a2"}
    status = cluster.filter(pod("p", affinity=affinity("podAffinity", term({"app": "db"}))), "b1")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) didn't match pod affinity rules",)


def test_anti_affinity(cluster: Cluster) -> None:
    p = pod("p", affinity=affinity("podAntiAffinity", term({"app": "db"}, ZONE)))
    assert set(cluster.feasible(p)) == {"b1", "c1"}
    status = cluster.filter(p, "a2")
    assert status is not None and status.code == Code.UNSCHEDULABLE
    assert status.reasons == ("node(s) didn't match pod anti-affinity rules",)


def test_existing_pods_anti_affinity_is_symmetric(cluster: Cluster) -> None:
    cluster.add(pod("loner", labels={"app": "loner"}, node_name="c1",
                    affinity=affinity("podAntiAffinity", term({"app": "web"}))))
    web = pod("web", labels={"app": "web"})
    assert set(cluster.feasible(web)) == {"a1", "a2", "b1"}
    status = cluster.filter(web, "c1")
    assert status is not None and status.reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert set(cluster.feasible(pod("other", labels={"app": "other"}))) == {"a1", "a2", "b1", "c1"}


def test_first_pod_of_a_self_affine_group_goes_anywhere(cluster: Cluster) -> None:
    group = affinity("podAffinity", term({"app": "web"}, ZONE))
    first = pod("web-0", labels={"app": "web"}, affinity=group)
    assert set(cluster.feasible(first)) == {"a1", "a2", "b1", "c1"}
    cluster.add(pod("web-0", labels={"app": "web"}, affinity=group, node_name="b1"))
    assert cluster.feasible(pod("web-1", labels={"app": "web"}, affinity=group)) == ["b1"]
    # a pod that does not match its own terms gets no such pass
    assert cluster.feasible(pod("x", labels={"app": "x"}, affinity=affinity("podAffinity", term({"app": "y"})))) == []


def test_spreading_replicas_with_anti_affinity(cluster: Cluster) -> None:
    anti = affinity("podAntiAffinity", term({"app": "web"}, ZONE))
    placed = []
    for i in range(3):
        p = pod(f"web-{i}", labels={"app": "web"}, affinity=anti)
        name = cluster.schedule(p)
        placed.append(cluster.node_info(name).labels[ZONE])
        cluster.add(pod(f"web-{i}", labels={"app": "web"}, affinity=anti, node_name=name))
    assert sorted(placed) == ["a", "b", "c"]
    assert cluster.feasible(pod("web-3", labels={"app": "web"}, affinity=anti)) == []


def test_namespaces_and_namespace_selector(cluster: Cluster) -> None:
    cluster.add(core_pb2.Namespace(metadata={"name": "data", "labels": {"team": "storage"}}))
    cluster.add(pod("pg", namespace="data", labels={"app": "pg"}, node_name="c1"))
    own_ns = pod("p", affinity=affinity("podAffinity", term({"app": "pg"})))
    assert cluster.feasible(own_ns) == []  # only the pod's own namespace by default
    listed = pod("p", affinity=affinity("podAffinity", term({"app": "pg"}, namespaces=["data"])))
    assert cluster.feasible(listed) == ["c1"]
    selected = pod("p", affinity=affinity("podAffinity", term({"app": "pg"}, namespaceSelector={
        "matchLabels": {"team": "storage"}})))
    assert cluster.feasible(selected) == ["c1"]
    everywhere = pod("p", affinity=affinity("podAffinity", term({"app": "pg"}, namespaceSelector={})))
    assert cluster.feasible(everywhere) == ["c1"]


def test_preferred_terms_score(cluster: Cluster) -> None:
    p = pod("p", affinity={
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term({"app": "db"}, ZONE)}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term({"app": "cache"}, ZONE)}]}})
    # zone a +50, zone b -50, zone c 0 -> normalized 100, 0, 50; weight 2
    assert cluster.scores(p) == {"a1": 200, "a2": 200, "b1": 0, "c1": 100}


def test_existing_pods_required_affinity_attracts(cluster: Cluster) -> None:
    cluster.add(pod("follower", labels={"app": "f"}, node_name="c1",
                    affinity=affinity("podAffinity", term({"app": "leader"}))))
    scores = cluster.scores(pod("leader", labels={"app": "leader"}))
    assert scores["c1"] == 200 and scores["a1"] == 0
