"""controller_manager/nodeipam.py: the CIDR set (allocation, occupation,
release, wrap-around) and the controller on the in-memory clientset:
distinct /24s from 10.244.0.0/16, CIDRs nodes already hold respected at
start, a deleted node's CIDR released, a full range reported and retried,
the service range kept out, and `--allocate-node-cidrs false`."""

from __future__ import annotations

import ipaddress

import pytest

from controller_manager.nodeipam import CIDRSet, NodeIPAMController
from proto import core_pb2

from ._cluster import Harness, meta, settle

Node = core_pb2.Node


def cidrs(h: Harness) -> dict[str, str]:
    return {n.metadata.name: n.spec.podCIDR for n in h.cs.objects(Node)}


def test_cidr_set_allocates_in_order_wraps_and_skips_used() -> None:
    s = CIDRSet(ipaddress.ip_network("10.0.0.0/30"), 31)
    assert str(s.allocate()) == "10.0.0.0/31"
    assert str(s.allocate()) == "10.0.0.2/31"
    assert s.allocate() is None
    s.release(ipaddress.ip_network("10.0.0.0/31"))
    assert str(s.allocate()) == "10.0.0.0/31"


def test_cidr_set_occupies_overlapping_ranges() -> None:
    s = CIDRSet(ipaddress.ip_network("10.244.0.0/16"), 24)
    s.occupy(ipaddress.ip_network("10.244.0.0/23"))  # a bigger range: two /24s
    s.occupy(ipaddress.ip_network("10.244.5.7/32"))  # a smaller one: its /24
    s.occupy(ipaddress.ip_network("192.168.0.0/24"))  # outside: nothing
    assert s.used() == 3
    assert str(s.allocate()) == "10.244.2.0/24"


def test_cidr_set_refuses_a_mask_wider_than_the_cluster() -> None:
    with pytest.raises(ValueError, match="larger than the cluster CIDR"):
        CIDRSet(ipaddress.ip_network("10.244.0.0/16"), 8)


async def test_nodes_get_distinct_cidrs_and_existing_ones_are_respected() -> None:
    h = Harness(NodeIPAMController)
    held = meta(Node(), "old")
    held.spec.podCIDR = "10.244.0.0/24"
    held.spec.podCIDRs.append("10.244.0.0/24")
    await h.cs.resource(Node).create(held)
    async with h:
        for i in range(3):
            await h.client(Node).create(meta(Node(), f"n{i}"))
        await settle()
        got = cidrs(h)
        assert got["old"] == "10.244.0.0/24"
        assert sorted(got.values()) == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
        n0 = h.get(Node, "", "n0")
        assert n0 is not None and list(n0.spec.podCIDRs) == [n0.spec.podCIDR]
        assert h.events("CIDRAssignmentSucceeded")


async def test_a_deleted_nodes_cidr_is_released() -> None:
    async with Harness(NodeIPAMController, cluster_cidr="10.9.0.0/23", node_cidr_mask_size=24) as h:
        await h.client(Node).create(meta(Node(), "a"))
        await h.client(Node).create(meta(Node(), "b"))
        await settle()
        assert h.controller().cidrs.used() == 2
        await h.client(Node).create(meta(Node(), "c"))
        await settle()
        assert not cidrs(h)["c"] and h.events("CIDRNotAvailable")  # the range is full
        freed = cidrs(h)["a"]
        await h.client(Node).delete("a")
        await h.advance(5)  # the retry's backoff
        assert cidrs(h)["c"] == freed


async def test_the_service_range_is_kept_out() -> None:
    async with Harness(NodeIPAMController, cluster_cidr="10.0.0.0/22", node_cidr_mask_size=24,
                       service_cluster_ip_range="10.0.0.0/24") as h:
        await h.client(Node).create(meta(Node(), "a"))
        await settle()
        assert cidrs(h)["a"] == "10.0.1.0/24"


async def test_allocation_can_be_turned_off() -> None:
    async with Harness(NodeIPAMController, allocate_node_cidrs=False) as h:
        await h.client(Node).create(meta(Node(), "a"))
        await settle()
        assert cidrs(h) == {"a": ""}
