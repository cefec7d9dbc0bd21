"""NodeInfo: one node and the running totals of the pods placed on it.

Filters and scores ask the same questions of every node in every cycle:
how much cpu and memory is requested here, which host ports are taken,
which of the pods here have affinity terms. Recomputing that from the pods
would make a cycle O(pods); instead each NodeInfo keeps the answers and
updates them as pods are added and removed (by the informers, or when the
scheduler assumes a pod it is about to bind). A NodeInfo is only changed
between cycles, never during one, so a cycle reads it without copying;
preemption, which must ask "what if these pods were gone", works on a
`clone()` of the one node it is considering.
"""

from __future__ import annotations

from typing import Any

from proto import core_pb2

from ._podinfo import PodInfo, Resources, int_value, normalized_image
from ._terms import Taint

_WILDCARD = "0.0.0.0"


class NodeInfo:
    __slots__ = ("affinity_pods", "alloc_cpu", "alloc_eph", "alloc_mem", "alloc_pods", "alloc_scalars",
                 "anti_affinity_pods", "generation", "images", "labels", "name", "node", "nz_cpu", "nz_mem",
                 "pods", "req_cpu", "req_eph", "req_mem", "req_scalars", "taints", "unschedulable", "used_ports")

    def __init__(self, name: str, node: core_pb2.Node | None = None) -> None:
        self.name = name
        self.node: core_pb2.Node | None = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.alloc_cpu = self.alloc_mem = self.alloc_eph = self.alloc_pods = 0
        self.alloc_scalars: dict[str, int] = {}
        self.images: dict[str, int] = {}  # normalized image name -> size in bytes
        self.req_cpu = self.req_mem = self.req_eph = 0
        self.req_scalars: dict[str, int] = {}
        self.nz_cpu = self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.affinity_pods: dict[str, PodInfo] = {}
        self.anti_affinity_pods: dict[str, PodInfo] = {}
        # (protocol, port) -> {host IP: how many pods use it}
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}
        self.generation = 0
        if node is not None:
            self.set_node(node)

    # ------------------------------------------------------------ the node

    def set_node(self, node: core_pb2.Node) -> None:
        self.node = node
        self.labels = dict(node.metadata.labels)
        self.taints = tuple(Taint(t.key, t.value, t.effect) for t in node.spec.taints)
        self.unschedulable = node.spec.unschedulable
        # A node that reports only capacity can use all of it (SetDefaults_NodeStatus).
        amounts = node.status.allocatable or node.status.capacity
        alloc = Resources.from_map(amounts)
        self.alloc_cpu, self.alloc_mem, self.alloc_eph = alloc.milli_cpu, alloc.memory, alloc.ephemeral_storage
        self.alloc_scalars = alloc.scalars
        self.alloc_pods = int_value(amounts["pods"].value) if "pods" in amounts else 0
        images: dict[str, int] = {}
        for image in node.status.images:
            for name in image.names:
                images[normalized_image(name)] = image.sizeBytes
        self.images = images
        self.generation += 1

    # ------------------------------------------------------------ pods

    def add_pod(self, pi: PodInfo) -> None:
        self.pods[pi.uid] = pi
        self._account(pi, 1)
        if pi.has_affinity:
            self.affinity_pods[pi.uid] = pi
        if pi.required_anti_affinity:
            self.anti_affinity_pods[pi.uid] = pi
        self.generation += 1

    def remove_pod(self, pi: PodInfo) -> bool:
        """Take a pod off the node; False if it was not here."""
        old = self.pods.pop(pi.uid, None)
        if old is None:
            return False
        self._account(old, -1)
        self.affinity_pods.pop(pi.uid, None)
        self.anti_affinity_pods.pop(pi.uid, None)
        self.generation += 1
        return True

    def _account(self, pi: PodInfo, sign: int) -> None:
        r = pi.requests
        self.req_cpu += sign * r.milli_cpu
        self.req_mem += sign * r.memory
        self.req_eph += sign * r.ephemeral_storage
        for name, amount in r.scalars.items():
            self.req_scalars[name] = self.req_scalars.get(name, 0) + sign * amount
        self.nz_cpu += sign * pi.non_zero_cpu
        self.nz_mem += sign * pi.non_zero_memory
        for ip, protocol, port in pi.host_ports:
            users = self.used_ports.setdefault((protocol, port), {})
            users[ip] = users.get(ip, 0) + sign
            if users[ip] <= 0:
                del users[ip]
                if not users:
                    del self.used_ports[(protocol, port)]

    def port_conflict(self, ports: tuple[tuple[str, str, int], ...]) -> bool:
        """Whether any wanted (host IP, protocol, port) is taken here; 0.0.0.0
        conflicts with every address, as in Kubernetes' HostPortInfo."""
        for ip, protocol, port in ports:
            users = self.used_ports.get((protocol, port))
            if users and (ip == _WILDCARD or _WILDCARD in users or ip in users):
                return True
        return False

    # ------------------------------------------------------------ copies

    def clone(self) -> NodeInfo:
        """An independent copy (the pods themselves are shared, being immutable)."""
        c = NodeInfo.__new__(NodeInfo)
        for attr in NodeInfo.__slots__:
            value: Any = getattr(self, attr)
            if isinstance(value, dict):
                value = dict(value)
            setattr(c, attr, value)
        c.req_scalars = dict(self.req_scalars)
        c.used_ports = {k: dict(v) for k, v in self.used_ports.items()}
        return c

    def __repr__(self) -> str:
        return (f"NodeInfo({self.name}, pods={len(self.pods)}, cpu={self.req_cpu}/{self.alloc_cpu}m, "
                f"memory={self.req_mem}/{self.alloc_mem})")
