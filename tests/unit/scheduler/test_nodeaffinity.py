"""NodeAffinity: spec.nodeSelector and required node affinity (In, NotIn,
Exists, DoesNotExist, Gt, Lt; terms ORed, expressions ANDed; matchFields
on metadata.name) as a filter, preferred terms as a score, including the
shared manifests' nodeSelector and node-affinity examples."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.framework import Code

from .support import Cluster, example, node, pod

ERR = "node(s) didn't match Pod's node affinity/selector"


def required(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": exprs} for exprs in terms]}}}


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)}


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(["NodeAffinity"]).add(
        node("ssd-1", labels={"disktype": "ssd", "zone": "a", "cores": "8"}),
        node("hdd-1", labels={"disktype": "hdd", "zone": "b", "cores": "2"}),
        node("bare", labels={}),
    )


@pytest.mark.parametrize(("affinity", "fits"), [
    (required([expr("disktype", "In", "ssd", "nvme")]), {"ssd-1"}),
    (required([expr("disktype", "NotIn", "ssd")]), {"hdd-1", "bare"}),
    (required([expr("zone", "Exists")]), {"ssd-1", "hdd-1"}),
    (required([expr("zone", "DoesNotExist")]), {"bare"}),
    (required([expr("cores", "Gt", "4")]), {"ssd-1"}),
    (required([expr("cores", "Lt", "4")]), {"hdd-1"}),
    # expressions in a term are ANDed
    (required([expr("zone", "Exists"), expr("disktype", "In", "hdd")]), {"hdd-1"}),
    # terms are ORed
    (required([expr("disktype", "In", "ssd")], [expr("zone", "DoesNotExist")]), {"ssd-1", "bare"}),
    # an empty term matches nothing
    (required([]), set()),
    # Gt with a value that is not a number matches nothing
    (required([expr("cores", "Gt", "many")]), set()),
])
def test_required_terms(cluster: Cluster, affinity: dict[str, Any], fits: set[str]) -> None:
    assert set(cluster.feasible(pod("p", affinity=affinity))) == fits


def test_match_fields_narrow_the_nodes_in_prefilter(cluster: Cluster) -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd-1"]}]}]}}}
    assert cluster.feasible(pod("p", affinity=affinity)) == ["hdd-1"]
    state, pi, _ = cluster.pre_filter(pod("p", affinity=affinity))
    names, status = cluster.framework.run_pre_filter(state, pi)
    assert status is None and names == frozenset({"hdd-1"})


def test_node_selector_from_the_nginx_example(cluster: Cluster) -> None:
    nginx = example("pods/pod-nginx.yaml")
    assert dict(nginx.spec.nodeSelector) == {"disktype": "ssd"}
    assert cluster.feasible(nginx) == ["ssd-1"]
    status = cluster.filter(nginx, "hdd-1")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (ERR,)


def test_the_node_affinity_example_intent() -> None:
    # pods/pod-with-node-affinity.yaml as stored does not decode (its required
    # section holds a preferred term); this is what it means: a zone in
    # antarctica-east1/-west1 is required, another-node-label-key preferred.
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            expr("topology.kubernetes.io/zone", "In", "antarctica-east1", "antarctica-west1")]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
            expr("another-node-label-key", "In", "another-node-label-value")]}}]}}
    c = Cluster(["NodeAffinity"]).add(
        node("east", labels={"topology.kubernetes.io/zone": "antarctica-east1"}),
        node("west", labels={"topology.kubernetes.io/zone": "antarctica-west1",
                             "another-node-label-key": "another-node-label-value"}),
        node("north", labels={"topology.kubernetes.io/zone": "arctic-1",
                              "another-node-label-key": "another-node-label-value"}),
    )
    p = pod("with-node-affinity", affinity=affinity)
    assert set(c.feasible(p)) == {"east", "west"}
    assert c.scores(p, ["east", "west"]) == {"east": 0, "west": 200}  # 100, weight 2
    assert c.schedule(p) == "west"


def test_preferred_terms_are_weighted_and_normalized(cluster: Cluster) -> None:
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 30, "preference": {"matchExpressions": [expr("disktype", "In", "ssd")]}},
        {"weight": 10, "preference": {"matchExpressions": [expr("zone", "Exists")]}}]}}
    # raw: ssd-1 40, hdd-1 10, bare 0 -> 100, 25, 0, times weight 2
    assert cluster.scores(pod("p", affinity=affinity)) == {"ssd-1": 200, "hdd-1": 50, "bare": 0}


def test_added_affinity_applies_to_every_pod() -> None:
    c = Cluster(["NodeAffinity"], args={"NodeAffinity": {"addedAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [expr("pool", "In", "batch")]}]}}}})
    c.add(node("batch", labels={"pool": "batch"}), node("web", labels={"pool": "web"}))
    assert c.feasible(pod("p")) == ["batch"]
