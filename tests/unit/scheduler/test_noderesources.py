"""NodeResourcesFit (cpu, memory, ephemeral storage, extended resources and
pod count against the node's allocatable, minus what its pods request),
NodeResourcesLeastAllocated and NodeResourcesBalancedAllocation."""

from __future__ import annotations

import pytest

from scheduler.framework import Code

from .support import Cluster, node, pod

FIT = ["NodeResourcesFit"]


def cluster_with(existing: list[tuple[str, str]], *, cpu: str = "2", memory: str = "4Gi", pods: int = 110,
                 extra: dict[str, str] | None = None) -> Cluster:
    c = Cluster(FIT).add(node("n1", cpu=cpu, memory=memory, pods=pods, extra=extra))
    for i, (pcpu, pmem) in enumerate(existing):
        c.add(pod(f"e{i}", cpu=pcpu, memory=pmem, node_name="n1"))
    return c


@pytest.mark.parametrize(("existing", "cpu", "memory", "reasons"), [
    ([], "2", "4Gi", None),  # exactly all of it
    ([("1", "1Gi")], "1", "3Gi", None),
    ([("1", "1Gi")], "1001m", "1Gi", ("Insufficient cpu",)),
    ([("1", "1Gi")], "500m", "3073Mi", ("Insufficient memory",)),
    ([("1500m", "3Gi")], "1", "2Gi", ("Insufficient cpu", "Insufficient memory")),
    ([], "0", "0", None),
])
def test_fit_table(existing: list[tuple[str, str]], cpu: str, memory: str, reasons: tuple[str, ...] | None) -> None:
    status = cluster_with(existing).filter(pod("p", cpu=cpu, memory=memory), "n1")
    if reasons is None:
        assert status is None
    else:
        assert status is not None and status.code == Code.UNSCHEDULABLE
        assert status.reasons == reasons


def test_too_many_pods() -> None:
    c = cluster_with([("0", "0"), ("0", "0")], pods=2)
    status = c.filter(pod("p"), "n1")
    assert status is not None and status.reasons == ("Too many pods",)


def test_init_containers_count_as_kubernetes_counts_them() -> None:
    c = cluster_with([("1", "1Gi")])
    big_init = pod("p", cpu="100m", initContainers=[
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "1500m"}}}])
    status = c.filter(big_init, "n1")
    assert status is not None and status.reasons == ("Insufficient cpu",)
    small_init = pod("q", cpu="500m", initContainers=[
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "900m"}}}])
    assert c.filter(small_init, "n1") is None


def test_ephemeral_storage_and_extended_resources() -> None:
    c = cluster_with([], extra={"ephemeral-storage": "10Gi", "example.com/gpu": "1"})
    wants = pod("p", containers=[{"name": "c", "image": "x", "resources": {"requests": {
        "ephemeral-storage": "20Gi", "example.com/gpu": "2"}}}])
    status = c.filter(wants, "n1")
    assert status is not None
    assert set(status.reasons) == {"Insufficient ephemeral-storage", "Insufficient example.com/gpu"}
    ignoring = Cluster(FIT, args={"NodeResourcesFit": {"ignoredResourceGroups": ["example.com"]}})
    ignoring.add(node("n1", extra={"ephemeral-storage": "30Gi"}))
    assert ignoring.filter(wants, "n1") is None


def test_least_allocated_prefers_the_emptier_node() -> None:
    c = Cluster(["NodeResourcesLeastAllocated"])
    c.add(node("empty", cpu="4", memory="8Gi"), node("busy", cpu="4", memory="8Gi"))
    c.add(pod("e", cpu="3", memory="6Gi", node_name="busy"))
    scores = c.scores(pod("p", cpu="1", memory="2Gi"))
    # empty: (4-1)/4 -> 75 for both resources; busy: nothing left -> 0
    assert scores == {"empty": 75, "busy": 0}


def test_least_allocated_counts_pods_without_requests() -> None:
    c = Cluster(["NodeResourcesLeastAllocated"]).add(node("n", cpu="1", memory="1000Mi"))
    # 100m of 1 cpu and 200Mi of 1000Mi: (90 + 80) / 2
    assert c.scores(pod("p")) == {"n": 85}


def test_least_allocated_weights() -> None:
    c = Cluster(["NodeResourcesLeastAllocated"], args={"NodeResourcesLeastAllocated": {
        "resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}})
    c.add(node("n", cpu="4", memory="4Gi"))
    # cpu (4-1)/4 = 75, memory (4-3)/4 = 25: (75*3 + 25) / 4
    assert c.scores(pod("p", cpu="1", memory="3Gi")) == {"n": 62}
    with pytest.raises(ValueError, match="only cpu and memory"):
        Cluster(["NodeResourcesLeastAllocated"], args={"NodeResourcesLeastAllocated": {
            "resources": [{"name": "gpu", "weight": 1}]}})


def test_balanced_allocation() -> None:
    c = Cluster(["NodeResourcesBalancedAllocation"])
    c.add(node("even", cpu="4", memory="4Gi"), node("skewed", cpu="4", memory="4Gi"))
    c.add(pod("e", cpu="2", memory="0", node_name="skewed"))
    scores = c.scores(pod("p", cpu="1", memory="1Gi"))
    # even: 1/4 and 1/4 -> 100; skewed: 3/4 and 1/4 -> 1 - 0.25 -> 75
    assert scores == {"even": 100, "skewed": 75}
