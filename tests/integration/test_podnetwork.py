"""The pod network agent in real namespaces: each node routes the others'
pod CIDRs through their lab addresses (host-gw), so a pod address on one
node reaches a pod address on another without NAT; routes follow Node
changes and deletions, and a route the agent did not make is left alone.

Two node namespaces on the lab switch (deploy/_topology.py), one agent in
each, talking to the session apiserver over its unix socket. A "pod" here
is an address on a bridge in the node namespace (as the CNI bridge holds its gateway address): enough to prove
the routing; the CNI bridge is the shim's business."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api import StatusError, from_dict
from client import ClientConfig, Clientset
from deploy._topology import Topology
from deploy.local import ManagedProcess, health_serving, wait_until
from proto import core_pb2
from tests.support.wait import eventually


def sh(namespace: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", namespace, *cmd], capture_output=True, text=True)


def routes(namespace: str) -> str:
    return sh(namespace, "ip", "-4", "route", "show").stdout


@dataclass
class Lab:
    topology: Topology
    names: list[str]          # Node names, one per node namespace
    cidrs: list[str]
    cs: Clientset
    agents: list[ManagedProcess]


@pytest.fixture
def topology() -> Iterator[Topology]:
    topo = Topology(prefix=f"kl-t{uuid.uuid4().hex[:5]}", nodes=2)
    topo.create()
    try:
        yield topo
    finally:
        topo.destroy()


def node_object(name: str, cidr: str, ip: str) -> core_pb2.Node:
    return from_dict(core_pb2.Node, {"metadata": {"name": name}, "spec": {"podCIDR": cidr},
                                     "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})


@pytest.fixture
async def lab(topology: Topology, apiserver_socket: str, workdir: Path) -> AsyncIterator[Lab]:
    tag = uuid.uuid4().hex[:6]
    names = [f"pn-{tag}-1", f"pn-{tag}-2"]
    # Unique CIDRs per run, so routes cannot collide with another test's.
    base = int(tag[:2], 16)
    cidrs = [f"10.{100 + base % 100}.{i}.0/24" for i in (1, 2)]
    cs = Clientset.connect(ClientConfig(server=apiserver_socket))
    nodes = cs.resource(core_pb2.Node)
    agents: list[ManagedProcess] = []
    try:
        for name, cidr, machine in zip(names, cidrs, topology.machines[1:], strict=True):
            await nodes.create(node_object(name, cidr, machine.address))
        for name, machine in zip(names, topology.machines[1:], strict=True):
            health = f"unix://{workdir / f'{name}-podnet.sock'}"
            agents.append(ManagedProcess(
                ["ip", "netns", "exec", machine.name, sys.executable, "-m", "podnetwork", "--server",
                 apiserver_socket, "--node-name", name, "--health-bind-address", health, "--resync-period", "2"],
                workdir / f"{name}-podnetwork.log"))
            wait_until(lambda h=health: health_serving(h), 30, "podnetwork", agents[-1].proc, agents[-1].log)
        yield Lab(topology, names, cidrs, cs, agents)
    finally:
        for agent in agents:
            agent.stop()
        for name in names:
            try:
                await nodes.delete(name)
            except StatusError:
                pass
        await cs.close()


async def test_nodes_route_each_others_pod_cidrs(lab: Lab) -> None:
    node1, node2 = lab.topology.machines[1:]
    cidr1, cidr2 = lab.cidrs
    await eventually(lambda: f"{cidr2} via {node2.address} dev eth0 proto 77" in routes(node1.name),
                     "node 1's route to node 2's pod CIDR")
    await eventually(lambda: f"{cidr1} via {node1.address} dev eth0 proto 77" in routes(node2.name),
                     "node 2's route to node 1's pod CIDR")
    assert cidr1 not in routes(node1.name)  # its own CIDR is its bridge's business

    # "Pods": an address from each node's CIDR; they reach each other
    # across the switch with their own source addresses (no NAT).
    pod1, pod2 = cidr1.replace(".0/24", ".5"), cidr2.replace(".0/24", ".5")
    for machine, pod in ((node1, pod1), (node2, pod2)):
        assert sh(machine.name, "ip", "link", "add", "pods", "type", "bridge").returncode == 0
        assert sh(machine.name, "ip", "addr", "add", f"{pod}/32", "dev", "pods").returncode == 0
        assert sh(machine.name, "ip", "link", "set", "pods", "up").returncode == 0
    ping = sh(node1.name, "busybox", "ping", "-c", "1", "-W", "2", "-I", pod1, pod2)
    assert ping.returncode == 0, ping.stdout + ping.stderr


async def test_routes_follow_node_changes_and_leave_foreign_routes_alone(lab: Lab) -> None:
    node1, node2 = lab.topology.machines[1:]
    _, cidr2 = lab.cidrs
    nodes = lab.cs.resource(core_pb2.Node)
    await eventually(lambda: f"{cidr2} via {node2.address} dev eth0 proto 77" in routes(node1.name),
                     "the first route")

    # The node's address changes: the route follows.
    node = await nodes.get(lab.names[1])
    node.status.addresses[0].address = "10.200.0.99"
    await nodes.update_status(node)
    await eventually(lambda: f"{cidr2} via 10.200.0.99 dev eth0 proto 77" in routes(node1.name),
                     "the route to follow the new address")

    # A route the agent did not make, to a CIDR a new node claims: left alone.
    foreign = cidr2.replace(".2.0/24", ".9.0/24")
    assert sh(node1.name, "ip", "route", "add", foreign, "via", node2.address).returncode == 0
    third = f"{lab.names[1]}-x"
    await nodes.create(node_object(third, foreign, "10.200.0.98"))
    try:
        message = f"a route to {foreign} that the pod network did not make exists; left alone"
        await eventually(lambda: message in lab.agents[0].log.read_text(), "the agent to notice the new node")
        table = routes(node1.name)
        assert f"{foreign} via {node2.address} dev eth0" in table and f"{foreign} via 10.200.0.98" not in table
    finally:
        await nodes.delete(third)

    await nodes.delete(lab.names[1])
    await eventually(lambda: cidr2 not in routes(node1.name), "the deleted node's route to go")
