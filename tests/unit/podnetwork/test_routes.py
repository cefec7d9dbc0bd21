"""Which routes a machine wants: one per other node with a pod CIDR and an
InternalIP, nothing for itself, and a clear word for a broken Node."""

from __future__ import annotations

from api import from_dict
from podnetwork import Route, desired_routes
from podnetwork._masquerade import rules
from proto import core_pb2


def node(name: str, cidr: str = "", ip: str = "") -> core_pb2.Node:
    obj: dict[str, object] = {"metadata": {"name": name}, "spec": {}, "status": {}}
    if cidr:
        obj["spec"] = {"podCIDR": cidr}
    if ip:
        obj["status"] = {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]}
    return from_dict(core_pb2.Node, obj)


def test_a_route_per_other_node() -> None:
    nodes = [node("a", "10.244.0.0/24", "10.200.0.11"), node("b", "10.244.1.0/24", "10.200.0.12"),
             node("c", "10.244.2.0/24", "10.200.0.13")]
    routes, problems = desired_routes(nodes, "a")
    assert routes == {Route("10.244.1.0/24", "10.200.0.12"), Route("10.244.2.0/24", "10.200.0.13")}
    assert problems == []
    # the control plane is no node: it routes to all of them
    assert len(desired_routes(nodes, "control-plane")[0]) == 3


def test_nodes_not_ready_for_routing_are_skipped_quietly() -> None:
    routes, problems = desired_routes([node("no-cidr", ip="10.200.0.11"), node("no-ip", "10.244.1.0/24")], "x")
    assert routes == set() and problems == []


def test_broken_nodes_are_reported_by_name() -> None:
    routes, problems = desired_routes([node("bad", "10.244.1.0/33", "10.200.0.11"),
                                       node("mixed", "fd00::/64", "10.200.0.12")], "x")
    assert routes == set()
    assert problems[0].startswith('node "bad": ') and "10.244.1.0/33" in problems[0]
    assert problems[1] == 'node "mixed": pod CIDR fd00::/64 and address 10.200.0.12 are not the same IP version'


def test_masquerade_leaves_pod_to_pod_traffic_alone() -> None:
    text = rules("10.244.0.0/16")
    assert text.startswith("*nat\n:KUBELAB-PODNET-MASQ - [0:0]\n")
    lines = text.splitlines()
    assert lines.index(next(x for x in lines if "-d 10.244.0.0/16" in x and "RETURN" in x)) < \
        lines.index(next(x for x in lines if "MASQUERADE" in x))
