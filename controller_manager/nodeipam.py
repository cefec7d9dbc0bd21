"""The node IPAM controller: every node gets a pod CIDR.

Pods on a node take their IPs from the node's `spec.podCIDR` (the CNI
bridge plugin's host-local range), and other nodes route that CIDR to it,
so the CIDRs must never overlap. This controller carves them out of
`--cluster-cidr` (10.244.0.0/16), one `/--node-cidr-mask-size` (24) each,
Kubernetes' range allocator:

* at start, the CIDRs nodes already hold are marked used (the allocator's
  state is the nodes themselves, so a restart loses nothing), and so is
  `--service-cluster-ip-range` where it overlaps the cluster CIDR;
* a node without a pod CIDR gets the next free one (searching on from the
  last one handed out, so a just-released CIDR is not reused at once);
* a deleted node's CIDR is released.

Keys are node names. The choice is made and recorded in memory before the
update is sent, so two nodes synced at once never get the same CIDR, and a
node synced again before the cache shows its update gets the same one
again. A full range is reported as a CIDRNotAvailable event and retried
with backoff. `--allocate-node-cidrs false` turns the controller into a
no-op (nodes keep whatever CIDR they were given by hand).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging

import component_base
from api import StatusError
from proto import core_pb2

from ._controller import Controller, ControllerContext

log = logging.getLogger(__name__)

Node = core_pb2.Node
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRSet:
    """The /mask subnets of one cluster CIDR, each free or used."""

    def __init__(self, cluster: Network, mask: int) -> None:
        if mask < cluster.prefixlen:
            raise ValueError(f"--node-cidr-mask-size {mask} is larger than the cluster CIDR {cluster} itself")
        if mask - cluster.prefixlen > 24:
            raise ValueError(f"--node-cidr-mask-size {mask} would cut {cluster} into more than 2^24 node CIDRs")
        self.cluster = cluster
        self.mask = mask
        self.size = 1 << (mask - cluster.prefixlen)
        self._used: set[int] = set()
        self._next = 0

    def _index(self, cidr: Network) -> int | None:
        if cidr.prefixlen != self.mask or not cidr.subnet_of(self.cluster):  # type: ignore[arg-type]
            return None
        return (int(cidr.network_address) - int(self.cluster.network_address)) >> (cidr.max_prefixlen - self.mask)

    def _cidr(self, index: int) -> Network:
        base = int(self.cluster.network_address) + (index << (self.cluster.max_prefixlen - self.mask))
        return ipaddress.ip_network((base, self.mask))

    def occupy(self, cidr: Network) -> None:
        """Mark every subnet overlapping `cidr` used (a node's CIDR, or the
        service range)."""
        if not cidr.overlaps(self.cluster):  # type: ignore[arg-type]
            return
        if cidr.prefixlen >= self.mask:
            index = self._index(cidr.supernet(new_prefix=self.mask))
            if index is not None:
                self._used.add(index)
            return
        for sub in cidr.subnets(new_prefix=self.mask):
            index = self._index(sub)
            if index is not None:
                self._used.add(index)

    def release(self, cidr: Network) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.discard(index)

    def allocate(self) -> Network | None:
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        return None

    def used(self) -> int:
        return len(self._used)


class NodeIPAMController(Controller):
    name = "nodeipam"
    event_source = "cidrAllocator"
    default_workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.enabled = bool(getattr(opts, "allocate_node_cidrs", True))
        cluster = ipaddress.ip_network(getattr(opts, "cluster_cidr", "10.244.0.0/16"), strict=False)
        self.cidrs = CIDRSet(cluster, int(getattr(opts, "node_cidr_mask_size", 24)))
        service_range = getattr(opts, "service_cluster_ip_range", "")
        self.service_range = ipaddress.ip_network(service_range, strict=False) if service_range else None
        nodes = ctx.informers.informer_for(Node)
        self.nodes = nodes.lister()
        #: node name -> the CIDR this controller holds for it
        self.assigned: dict[str, Network] = {}
        if self.enabled:
            nodes.add_event_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                    on_delete=self.enqueue)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("node IPAM controller")
        g.add_argument("--allocate-node-cidrs", type=component_base.boolean, default=True, metavar="BOOL",
                       help="give every node a pod CIDR from --cluster-cidr (default %(default)s)")
        g.add_argument("--cluster-cidr", default="10.244.0.0/16", metavar="CIDR",
                       help="the range pod CIDRs are carved from (default %(default)s)")
        g.add_argument("--node-cidr-mask-size", type=int, default=24, metavar="BITS",
                       help="the prefix length of each node's pod CIDR (default %(default)s)")
        g.add_argument("--service-cluster-ip-range", default="", metavar="CIDR",
                       help="the Service ClusterIP range, kept out of pod CIDRs where they overlap")

    async def run(self, workers: int) -> None:
        if self.enabled:
            self.rebuild()
        await super().run(workers)

    def rebuild(self) -> None:
        """Mark used what the nodes already hold (called once caches are synced)."""
        if self.service_range is not None:
            self.cidrs.occupy(self.service_range)
        for node in self.nodes.list():
            for text in _node_cidrs(node):
                cidr = _parse(text)
                if cidr is not None and cidr.version == self.cidrs.cluster.version:
                    self.cidrs.occupy(cidr)
                    self.assigned[node.metadata.name] = cidr

    async def sync(self, key: str) -> None:
        if not self.enabled:
            return
        try:
            node = self.nodes.get("", key)
        except StatusError as err:
            if err.reason != "NotFound":
                raise
            released = self.assigned.pop(key, None)
            if released is not None:
                self.cidrs.release(released)
                log.info("nodeipam: released %s of deleted node %s", released, key)
            return
        existing = [c for c in (_parse(t) for t in _node_cidrs(node)) if c is not None]
        if existing:
            mine = self.assigned.get(key)
            if mine is not None and mine not in existing:
                self.cidrs.release(mine)  # someone set another CIDR by hand
            for held in existing:
                if held.version == self.cidrs.cluster.version:
                    self.cidrs.occupy(held)
                    self.assigned[key] = held
            return
        cidr: Network | None = self.assigned.get(key)
        if cidr is None:
            cidr = self.cidrs.allocate()
            if cidr is None:
                self.recorder.event(node, "Warning", "CIDRNotAvailable",
                                    f"Node {key} status is now: CIDRNotAvailable")
                raise RuntimeError(f"no pod CIDR left in {self.cidrs.cluster} for node {key} "
                                   f"({self.cidrs.used()} of {self.cidrs.size} in use)")
            self.assigned[key] = cidr
        new = Node()
        new.CopyFrom(node)
        new.spec.podCIDR = str(cidr)
        del new.spec.podCIDRs[:]
        new.spec.podCIDRs.append(str(cidr))
        try:
            await self.clientset.resource(Node).update(new)
        except StatusError as err:
            if err.reason == "NotFound":
                self.cidrs.release(cidr)
                self.assigned.pop(key, None)
                return
            raise  # a Conflict: try again with the same CIDR
        self.recorder.event(node, "Normal", "CIDRAssignmentSucceeded", f"Node {key} was given pod CIDR {cidr}")
        log.info("nodeipam: node %s gets pod CIDR %s", key, cidr)


def _node_cidrs(node: Node) -> list[str]:
    return list(node.spec.podCIDRs) or ([node.spec.podCIDR] if node.spec.podCIDR else [])


def _parse(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
