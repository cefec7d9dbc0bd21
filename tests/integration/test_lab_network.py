"""The lab's network of namespaces (deploy/_topology.py): machines reach
each other over the switch, nothing lands in the host's own namespace, and
destroy() removes every namespace, a crashed run's included."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute, netns

from deploy._topology import Topology, TopologyError


def host_links() -> list[str]:
    with IPRoute() as ipr:
        return sorted(str(link.get("ifname")) for link in ipr.get_links())


def ping(namespace: str, address: str) -> bool:
    out = subprocess.run(["ip", "netns", "exec", namespace, "busybox", "ping", "-c", "1", "-W", "2", address],
                         capture_output=True, text=True)
    return out.returncode == 0


@pytest.fixture
def topology() -> Iterator[Topology]:
    topo = Topology(prefix=f"kl-t{uuid.uuid4().hex[:5]}", nodes=2)
    try:
        yield topo
    finally:
        topo.destroy()


def test_machines_reach_each_other_and_the_host_is_untouched(topology: Topology) -> None:
    before = host_links()
    topology.create()
    topology.create()  # idempotent
    assert topology.namespaces() == sorted([topology.switch, topology.control_plane,
                                            topology.node(1), topology.node(2)])
    cp, node1, node2 = topology.machines
    assert (cp.address, node1.address, node2.address) == ("10.200.0.2", "10.200.0.11", "10.200.0.12")
    assert ping(node1.name, node2.address) and ping(node2.name, cp.address) and ping(cp.name, node1.address)
    forwarding = subprocess.run(["ip", "netns", "exec", node1.name, "cat", "/proc/sys/net/ipv4/ip_forward"],
                                capture_output=True, text=True).stdout.strip()
    assert forwarding == "1"
    default = subprocess.run(["ip", "netns", "exec", node1.name, "ip", "route", "show", "default"],
                             capture_output=True, text=True).stdout
    assert default.startswith(f"default via {cp.address} dev eth0")
    assert host_links() == before


def test_destroy_removes_a_crashed_runs_namespaces(topology: Topology) -> None:
    topology.create()
    bigger = Topology(prefix=topology.prefix, nodes=3)  # a later run with another node count
    leftover = bigger.node(3)
    netns.create(leftover)
    removed = Topology(prefix=topology.prefix, nodes=1).destroy()
    assert leftover in removed and topology.node(2) in removed
    assert not [n for n in netns.listnetns() if n.startswith(topology.prefix + "-")]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(TopologyError, match="nodes: must be between 0 and 200"):
        Topology(nodes=-1)
    with pytest.raises(TopologyError, match="too small"):
        Topology(nodes=10, subnet="10.200.0.0/29")
