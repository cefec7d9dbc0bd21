"""The small node filters: NodeName (PodFitsHost), NodePorts (hostPort
conflicts, 0.0.0.0 against every IP) and NodeUnschedulable (cordoned
nodes, unless tolerated); and ImageLocality's score."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.framework import Code, new_pod_info
from scheduler.plugins.imagelocality import MB

from .support import Cluster, node, pod


def test_node_name() -> None:
    c = Cluster(["NodeName"]).add(node("a"), node("b"))
    pi = new_pod_info(pod("p"))
    pinned = pi.with_pod(pi.pod)
    pinned.node_name = "b"  # as if spec.nodeName were set (such pods never reach the queue)
    state, _, status = c.pre_filter(pinned)
    assert status is None
    assert c.framework.run_filters(state, pinned, c.node_info("b")) is None
    refused = c.framework.run_filters(state, pinned, c.node_info("a"))
    assert refused is not None and refused.reasons == ("node(s) didn't match the requested node name",)
    assert set(c.feasible(pod("q"))) == {"a", "b"}


def ports(*specs: tuple[int, str, str]) -> list[dict[str, Any]]:
    return [{"name": "c", "image": "x", "ports": [
        {"containerPort": port, "hostPort": port, "protocol": proto, "hostIP": ip} for port, proto, ip in specs]}]


@pytest.mark.parametrize(("existing", "wanted", "fits"), [
    ([(8080, "TCP", "")], [(8080, "TCP", "")], False),
    ([(8080, "TCP", "")], [(8080, "UDP", "")], True),
    ([(8080, "TCP", "")], [(8081, "TCP", "")], True),
    ([(8080, "TCP", "10.0.0.1")], [(8080, "TCP", "10.0.0.2")], True),
    ([(8080, "TCP", "10.0.0.1")], [(8080, "TCP", "10.0.0.1")], False),
    ([(8080, "TCP", "10.0.0.1")], [(8080, "TCP", "")], False),  # 0.0.0.0 clashes with every IP
    ([(8080, "TCP", "")], [(8080, "TCP", "10.0.0.1")], False),
])
def test_host_ports(existing: list[tuple[int, str, str]], wanted: list[tuple[int, str, str]], fits: bool) -> None:
    c = Cluster(["NodePorts"]).add(node("n"), pod("e", node_name="n", containers=ports(*existing)))
    status = c.filter(pod("p", containers=ports(*wanted)), "n")
    assert (status is None) is fits
    if not fits:
        assert status is not None and status.reasons == ("node(s) didn't have free ports for the requested pod ports",)


def test_ports_free_again_when_the_pod_goes() -> None:
    c = Cluster(["NodePorts"]).add(node("n"))
    holder = pod("e", node_name="n", containers=ports((80, "TCP", "")))
    c.add(holder)
    assert c.filter(pod("p", containers=ports((80, "TCP", ""))), "n") is not None
    c.cache.remove_pod(holder.metadata.uid)
    assert c.filter(pod("p", containers=ports((80, "TCP", ""))), "n") is None


def test_cordoned_nodes() -> None:
    c = Cluster(["NodeUnschedulable"]).add(node("open"), node("cordoned", unschedulable=True))
    assert c.feasible(pod("p")) == ["open"]
    status = c.filter(pod("p"), "cordoned")
    assert status is not None and status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) were unschedulable",)
    daemon = pod("d", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                    "effect": "NoSchedule"}])
    assert set(c.feasible(daemon)) == {"open", "cordoned"}


def test_image_locality() -> None:
    c = Cluster(["ImageLocality"]).add(
        node("has-big", images=[(["docker.io/library/app:1"], 500 * MB)]),
        node("has-small", images=[(["app:2"], 10 * MB)]),
        node("none"), node("none-2"))
    scores = c.scores(pod("p", containers=[{"name": "c", "image": "app:1"}]))
    # 500 MB on 1 of 4 nodes counts 125 MB: 100 * (125 - 23) / (1000 - 23)
    assert scores == {"has-big": 10, "has-small": 0, "none": 0, "none-2": 0}
    # an image no node has: every node scores 0 (the plugin skips the pod)
    state, pi, _ = c.pre_filter(pod("q", containers=[{"name": "c", "image": "elsewhere"}]))
    c.framework.run_pre_score(state, pi, list(c.snapshot.node_infos))
    assert "ImageLocality" in state.skip_score
